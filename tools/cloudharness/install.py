# Copyright 2026 cinder-rbd-upload-clone developers
#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Installation: Debian packages, the venv of the release and its PyPI
packages (pinned by the release's constraints/<release>.txt), this project
(editable), and Debian's rados/rbd modules linked into the venv."""

import contextlib
import glob
import hashlib
import json
import os
import shutil
import sys

from cloudharness import settings as s
from cloudharness import util
from cloudharness.util import Fail


def missing_apt_packages():
    r = util.run(['dpkg-query', '-W', '-f=${Package} ${db:Status-Abbrev}\n']
                 + s.APT_PACKAGES, check=False, timeout=30)
    ok = {line.split()[0] for line in r.stdout.splitlines()
          if len(line.split()) > 1 and line.split()[1] == 'ii'}
    return [p for p in s.APT_PACKAGES if p not in ok]


def install_apt(note):
    missing = missing_apt_packages()
    if not missing:
        note.append('already installed')
        return
    if os.geteuid() != 0:
        raise Fail('apt packages missing (%s) and not root'
                   % ' '.join(missing))
    env = util.base_env()
    env['DEBIAN_FRONTEND'] = 'noninteractive'
    cmd = ['apt-get', 'install', '-y', '-q', '--no-install-recommends']
    log = os.path.join(s.LOGS, 'install-apt.log')
    r = util.run(cmd + missing, env=env, check=False, timeout=1200)
    out = r.stdout + r.stderr
    if r.returncode:
        r1 = util.run(['apt-get', 'update', '-q'], env=env, check=False,
                      timeout=600)
        r = util.run(cmd + missing, env=env, check=False, timeout=1200)
        out += r1.stdout + r1.stderr + r.stdout + r.stderr
    util.write_file(log, out)
    if r.returncode or missing_apt_packages():
        raise Fail('apt-get install failed, see %s' % log, output=out)
    note.append('installed ' + ' '.join(missing))


def find_python():
    cands = [os.path.expanduser('~/.pyenv/versions/3.11.7/bin/python3'),
             sys.executable if sys.version_info[:2] == (3, 11) else None,
             shutil.which('python3.11')]
    cands += sorted(glob.glob(os.path.expanduser(
        '~/.pyenv/versions/3.11.*/bin/python3')), reverse=True)
    for c in cands:
        if c and os.path.exists(c):
            return c
    raise Fail('no Python %s found to create %s' % (s.PY_VERSION, s.VENV))


def venv_python_version():
    r = util.run([s.VPY, '-c', 'import sys; print("%d.%d" % '
                  'sys.version_info[:2])'], check=False, timeout=30)
    return r.stdout.strip() if r.returncode == 0 else None


def missing_pip_packages():
    code = ('import importlib.metadata as m, json, sys\n'
            'out = []\n'
            'for name, spec in json.loads(sys.argv[1]):\n'
            '    try:\n'
            '        v = m.version(name)\n'
            '    except m.PackageNotFoundError:\n'
            '        out.append(name + spec); continue\n'
            '    if spec.startswith("==") and v != spec[2:]:\n'
            '        out.append(name + spec)\n'
            'print(json.dumps(out))\n')
    r = util.run([s.VPY, '-c', code,
                  json.dumps(s.pip_packages(s.RELEASE))], timeout=60)
    return json.loads(r.stdout)


def pip_fingerprint():
    """What the venv's PyPI packages were installed from."""
    h = hashlib.sha256(json.dumps(s.pip_packages(s.RELEASE)).encode())
    with open(s.constraints_of(s.RELEASE), 'rb') as f:
        h.update(f.read())
    return h.hexdigest()


def install_venv(note):
    if os.path.exists(s.VPY):
        ver = venv_python_version()
        if ver != s.PY_VERSION:
            raise Fail('%s uses Python %s; Debian rados/rbd need %s. Remove '
                       'the venv and re-run.' % (s.VENV, ver, s.PY_VERSION))
    else:
        util.run([find_python(), '-m', 'venv', s.VENV], timeout=300)
        note.append('created venv')
    stamp = os.path.join(s.VENV, '.cloud-pip-install')
    fp = pip_fingerprint()
    missing = missing_pip_packages()
    if not missing and util.read_file(stamp) == fp:
        note.append('%s packages present' % s.RELEASE)
        return
    # Everything, not only what is missing: the release's constraints
    # move what an earlier install left at other versions.
    log = os.path.join(s.LOGS, 'install-pip.log')
    r = util.run([s.VPY, '-m', 'pip', 'install', '-q', '-c',
                  s.constraints_of(s.RELEASE)] +
                 [name + spec for name, spec in s.pip_packages(s.RELEASE)],
                 check=False, timeout=3600)
    util.write_file(log, r.stdout + r.stderr)
    if r.returncode:
        raise Fail('pip install failed, see %s' % log,
                   output=r.stdout + r.stderr)
    util.write_file(stamp, fp + '\n')
    note.append('pip installed %s (%d packages were missing)' % (
        s.RELEASE, len(missing)))


def project_fingerprint():
    h = hashlib.sha256()
    for name in ('setup.cfg', 'setup.py', 'pyproject.toml',
                 'requirements.txt'):
        p = os.path.join(s.REPO, name)
        if os.path.exists(p):
            with open(p, 'rb') as f:
                h.update(name.encode() + b'\0' + f.read())
    return h.hexdigest()


def install_project(note, required):
    if not os.path.exists(os.path.join(s.REPO, 'setup.cfg')):
        note.append('no setup.cfg yet: skipped')
        return
    stamp = os.path.join(s.VENV, '.cloud-editable-install')
    fp = project_fingerprint() + ' ' + s.RELEASE
    importable = util.run(
        [s.VPY, '-c', 'import importlib.util, sys; s = importlib'
         '.util.find_spec("cinder_rbd_upload_clone"); sys.exit('
         '0 if s and s.origin and s.origin.startswith(%r) else 1)'
         % s.REPO], check=False, timeout=30)
    if util.read_file(stamp) == fp and importable.returncode == 0:
        note.append('already installed (editable)')
        return
    log = os.path.join(s.LOGS, 'install-project.log')
    cmd = [s.VPY, '-m', 'pip', 'install', '-q', '-c',
           s.constraints_of(s.RELEASE), '-e', s.REPO]
    r = util.run(cmd, check=False, timeout=1200)
    out = r.stdout + r.stderr
    if r.returncode and 'pbr' in out.lower():
        # pbr needs a version from git; a tree with no commit/tag has none.
        env = util.base_env()
        env['PBR_VERSION'] = '0.0.1'
        r = util.run(cmd, env=env, check=False, timeout=1200)
        out += r.stdout + r.stderr
    util.write_file(log, out)
    if r.returncode:
        if required:
            raise Fail('pip install -e . failed, see %s' % log, output=out)
        note.append('pip install -e . FAILED (see %s); continuing because '
                    'the driver override does not need it' % log)
        return
    util.write_file(stamp, fp + '\n')
    note.append('pip install -e . done')


def link_ceph_bindings(note):
    site = util.run([s.VPY, '-c', 'import sysconfig; '
                     'print(sysconfig.get_paths()["purelib"])'],
                    timeout=30).stdout.strip()
    made = []
    for src in sorted(glob.glob('/usr/lib/python3/dist-packages/rados*.so') +
                      glob.glob('/usr/lib/python3/dist-packages/rbd*.so')):
        dst = os.path.join(site, os.path.basename(src))
        if os.path.realpath(dst) != os.path.realpath(src):
            with contextlib.suppress(OSError):
                os.unlink(dst)
            os.symlink(src, dst)
            made.append(os.path.basename(src))
    util.run([s.VPY, '-c', 'import rados, rbd'], timeout=30)
    note.append('linked ' + ', '.join(made) if made else 'already linked')


def install_all(driver):
    for d in (s.CLOUD, s.PIDS, s.LOGS):
        os.makedirs(d, exist_ok=True)
    with util.step('apt packages') as n:
        install_apt(n)
    with util.step('venv + pip packages') as n:
        install_venv(n)
    with util.step('project (pip install -e .)') as n:
        install_project(n, required=driver == s.DEFAULT_DRIVER)
    with util.step('rados/rbd modules in venv') as n:
        link_ceph_bindings(n)

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

"""Helpers shared by the tools and tests: the venv, the real CLIs.

Every action goes through the real `openstack` and `cinder` clients with
the local cloud's openrc files. Ceph, read and written with the admin
keyring only to put known data into volumes and to show where images live,
is tools/cephlib.py.
"""

import hashlib
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLOUD = os.environ.get('CLOUD_DIR', os.path.join(REPO, '.cloud'))


def venv():
    """The venv of the cloud's release (tools/cloud up --release)."""
    sys.path.insert(0, os.path.join(REPO, 'tools'))
    from cloudharness import settings
    release = (settings.recorded_release(CLOUD) or
               os.environ.get('CLOUD_RELEASE') or settings.DEFAULT_RELEASE)
    return settings.venv_of(release)


VENV_BIN = os.path.join(venv(), 'bin')
VENV_PYTHON = os.path.join(VENV_BIN, 'python')
MiB = 1024 * 1024
GiB = 1024 * MiB


CLOUD_TOOL = os.path.join(REPO, 'tools', 'cloud')
UP_DONE = 'CLOUD_UP_DONE'  # set once tools/cloud up has run for this tool


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(
        os.path.dirname(VENV_BIN))


def enter_venv(cloud_up=False):
    """Go on in the project's venv, which has the clients and rados/rbd.

    A tool may be started with any python3, from any directory, before the
    venv exists. With cloud_up, `tools/cloud up` (stdlib only) runs first,
    in this interpreter: it installs the venv and starts the cloud. Then
    the tool starts again in the venv's python with the same arguments.
    """
    if cloud_up and not os.environ.get(UP_DONE):
        cloud_up_now()
    if in_venv():
        return
    if not os.path.exists(VENV_PYTHON):
        sys.exit('%s: no %s yet: run tools/cloud up first' % (
            os.path.basename(sys.argv[0]), os.path.dirname(VENV_BIN)))
    os.execv(VENV_PYTHON, [VENV_PYTHON] + sys.argv)


def cloud_up_now(extra=()):
    """tools/cloud up, once per tool run (re-execs inherit the mark)."""
    rc = subprocess.run([sys.executable, CLOUD_TOOL, 'up'] +
                        list(extra)).returncode
    if rc:
        sys.exit('%s: tools/cloud up failed (exit %d), see above' % (
            os.path.basename(sys.argv[0]), rc))
    os.environ[UP_DONE] = '1'


def read_openrc(name='openrc'):
    """Exported variables of an openrc: a name in .cloud, or a path."""
    return _leak_check().read_openrc(os.path.join(CLOUD, name))


def _leak_check():
    """The package's stdlib-only openrc and session helpers, from REPO."""
    if REPO not in sys.path:
        sys.path.append(REPO)
    from cinder_rbd_upload_clone.cmd import leak_check
    return leak_check


def cli_env(openrc='openrc'):
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    env.update(read_openrc(openrc))
    env['PATH'] = VENV_BIN + os.pathsep + env.get('PATH', '')
    return env


class CLIError(Exception):
    pass


def run(*args, openrc='openrc', timeout=600):
    proc = subprocess.run(list(args), env=cli_env(openrc), timeout=timeout,
                          capture_output=True, text=True)
    if proc.returncode:
        raise CLIError('%s failed (%d): %s' % (' '.join(args),
                                               proc.returncode,
                                               proc.stderr.strip()[-2000:]))
    return proc.stdout


def openstack(*args, **kwargs):
    out = run('openstack', *args, '-f', 'json', **kwargs)
    return json.loads(out) if out.strip() else None


def wait_for(what, check, timeout=600, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        done, last = check()
        if done:
            return last
        time.sleep(interval)
    raise RuntimeError('timed out after %ss waiting for %s (last: %s)' %
                       (timeout, what, last))


def volume_status(vol_id):
    return clients()[1].volumes.get(vol_id).status


def create_volume(name, size_gb, volume_type):
    vol = openstack('volume', 'create', '--size', str(size_gb), '--type',
                    volume_type, name)

    def check():
        status = volume_status(vol['id'])
        if status == 'error':
            raise RuntimeError('volume %s went to error' % vol['id'])
        return status == 'available', status
    wait_for('volume %s available' % vol['id'], check, 300, 0.5)
    return vol['id']


def delete_volume(vol_id):
    run('openstack', 'volume', 'delete', vol_id)

    def check():
        try:
            status = volume_status(vol_id)
        except Exception:
            return True, 'gone'
        return False, status
    wait_for('volume %s deleted' % vol_id, check, 300, 0.5)


_clients = {}


def clients(openrc='openrc'):
    """In-process (glance, cinder) clients, for fast status polling."""
    if openrc not in _clients:
        from cinderclient import client as cinder_client
        from glanceclient import client as glance_client
        sess = _leak_check().session_for(read_openrc(openrc))
        _clients[openrc] = (glance_client.Client('2', session=sess),
                            cinder_client.Client('3.1', session=sess))
    return _clients[openrc]


def image_status(image_id):
    try:
        return clients()[0].images.get(image_id)['status']
    except Exception:
        return None


def upload_to_image(vol_id, name, disk_format='raw', timed=None):
    """`cinder upload-to-image`; returns (image id, seconds until active).

    ``timed``, if given, is started when the command starts and stopped
    when the image is active (tools/bench).
    """
    if timed:
        timed.start()
    start = time.monotonic()
    out = run('cinder', 'upload-to-image', '--disk-format', disk_format,
              '--container-format', 'bare', vol_id, name)
    image_id = None
    for line in out.splitlines():
        cells = [c.strip() for c in line.split('|')]
        if len(cells) > 2 and cells[1] == 'image_id':
            image_id = cells[2]
    if not image_id:
        raise RuntimeError('no image id in: %s' % out)

    def check():
        status = image_status(image_id)
        if status in ('killed', 'deleted', None):
            raise RuntimeError('image %s is %s' % (image_id, status))
        return status == 'active', status
    wait_for('image %s active' % image_id, check, 3600, 0.1)
    seconds = time.monotonic() - start
    if timed:
        timed.stop()

    def volume_free():
        status = volume_status(vol_id)
        return status == 'available', status
    wait_for('volume %s available' % vol_id, volume_free, 600, 0.2)
    return image_id, seconds


def hashed(image):
    """Glance has hashed the image and finished its import task.

    Glance 33 sets os_hash_value, then ends the hash operation, then drops
    the image's import lock (os_glance_import_task). An image deleted in
    between fails with a 500 ("Operation file ... does not exist, cannot
    cancel"): wait for the lock to go too.
    """
    return bool(image.get('os_hash_value')) and not image.get(
        'os_glance_import_task')


def delete_image(image_id):
    run('openstack', 'image', 'delete', image_id)


def download_sha256(image_id, path):
    run('openstack', 'image', 'save', '--file', path, image_id,
        timeout=3600)
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(4 * MiB), b''):
            digest.update(chunk)
    os.unlink(path)
    return digest.hexdigest()


def table(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = '  '.join('%-*s' % (w, h) for w, h in zip(widths, headers))
    out = [line, '  '.join('-' * w for w in widths)]
    for row in rows:
        out.append('  '.join('%-*s' % (w, c) for w, c in zip(widths, row)))
    return '\n'.join(x.rstrip() for x in out)

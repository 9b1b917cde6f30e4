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

"""First contact: the README's commands are CI's, and the tools start.

Every tool under tools/ must start with the system python3 from any
directory (here: --help from /, with no venv in the environment).
"""

import os
import re
import subprocess

import testtools

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SYSTEM_PYTHON = '/usr/bin/python3'


def readme_commands():
    """The commands of the README's 'Try it: two commands' block."""
    with open(os.path.join(REPO, 'README.md')) as f:
        text = f.read()
    section = text.split('## Try it: two commands', 1)[1]
    block = re.search(r'```sh\n(.*?)```', section, re.S).group(1)
    return [line.split('#')[0].strip() for line in block.splitlines()
            if line.split('#')[0].strip()]


def ci_commands():
    """The lines of .ci/run that run a tool."""
    with open(os.path.join(REPO, '.ci', 'run')) as f:
        return [line.split('#')[0].strip() for line in f
                if line.startswith('tools/')]


class FirstContactTestCase(testtools.TestCase):

    def test_ci_runs_the_readme_commands_in_order(self):
        self.assertEqual(['tools/demo', 'tools/test'], readme_commands())
        self.assertEqual(readme_commands(), ci_commands())

    def test_python_tools_start_from_anywhere_with_system_python(self):
        if not os.path.exists(SYSTEM_PYTHON):
            self.skipTest('no %s' % SYSTEM_PYTHON)
        env = {k: v for k, v in os.environ.items()
               if k not in ('VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME')}
        for tool in ('cloud', 'demo', 'bench', 'leak-check'):
            path = os.path.join(REPO, 'tools', tool)
            proc = subprocess.run([SYSTEM_PYTHON, path, '--help'], cwd='/',
                                  env=env, capture_output=True, text=True,
                                  timeout=120)
            self.assertEqual(0, proc.returncode, '%s: %s%s' % (
                tool, proc.stdout, proc.stderr))
            self.assertIn('usage:', proc.stdout, tool)

    def test_shell_tools_are_executable(self):
        for tool in ('cloud', 'demo', 'bench', 'leak-check', 'test',
                     'with-etc-ceph', 'link-ceph-bindings'):
            path = os.path.join(REPO, 'tools', tool)
            self.assertTrue(os.access(path, os.X_OK), path)


class ReleasesTestCase(testtools.TestCase):
    """The harness, tox and tools/test-releases name the same releases."""

    def setUp(self):
        super(ReleasesTestCase, self).setUp()
        import sys
        sys.path.insert(0, os.path.join(REPO, 'tools'))
        self.addCleanup(sys.path.remove, os.path.join(REPO, 'tools'))
        from cloudharness import settings
        self.settings = settings

    def test_every_release_has_constraints_and_a_tox_env(self):
        with open(os.path.join(REPO, 'tox.ini')) as f:
            tox = f.read()
        with open(os.path.join(REPO, 'tools', 'test-releases')) as f:
            self.assertIn('SUPPORTED=(%s)' % ' '.join(
                sorted(self.settings.RELEASES)), f.read())
        for release, pins in self.settings.RELEASES.items():
            self.assertTrue(os.path.exists(
                self.settings.constraints_of(release)), release)
            # tox's py3-<release> tests the Cinder the cloud runs.
            self.assertIn('%s: cinder==%s' % (release, pins['cinder']), tox)

    def test_newest_release_is_the_default_venv(self):
        s = self.settings
        self.assertEqual(max(s.RELEASES), s.DEFAULT_RELEASE)
        self.assertEqual(os.path.join(REPO, '.venv'),
                         s.venv_of(s.DEFAULT_RELEASE))
        self.assertEqual(os.path.join(REPO, '.venv-2025.1'),
                         s.venv_of('2025.1'))
        # PIP_PACKAGES pins the default release's services.
        self.assertEqual(s.PIP_PACKAGES, s.pip_packages(s.DEFAULT_RELEASE))
        pins = dict(s.pip_packages('2025.1'))
        self.assertEqual('==26.3.0', pins['cinder'])
        self.assertEqual('==30.2.0', pins['glance'])

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

"""cinder-rbd-upload-clone doctor on the real cloud, and with faults."""

import configparser
import json
import os
import subprocess
import sys
import tempfile

import testtools

from tests.functional import base

# The command of the environment the tests run in (.venv, .venv-<release>
# or tox's).
DOCTOR = os.path.join(os.path.dirname(sys.executable),
                      'cinder-rbd-upload-clone')


class DoctorTestCase(testtools.TestCase):

    def doctor(self, edit=None, *extra):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(base.CINDER_CONF)
        if edit:
            edit(parser)
        fd, path = tempfile.mkstemp(suffix='.conf')
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, 'w') as f:
            parser.write(f)
        proc = subprocess.run(
            [DOCTOR, 'doctor', '--config-file', path, '--backend',
             base.BACKEND, '--format', 'json'] + list(extra),
            capture_output=True, text=True, timeout=120)
        result = json.loads(proc.stdout)
        result['exit'] = proc.returncode
        result['by_name'] = {c['check']: c for c in result['checks']}
        return result

    def test_all_pass_on_the_local_cloud(self):
        r = self.doctor(None, '--glance-ceph-user', 'glance',
                        '--glance-keyring', os.path.join(
                            base.CLOUD, 'ceph.client.glance.keyring'))
        self.assertEqual(0, r['exit'], r['checks'])
        self.assertTrue(r['will_clone'])
        self.assertEqual({'pass'}, {c['result'] for c in r['checks']})

    def test_option_off(self):
        def edit(p):
            p[base.BACKEND]['enable_clone_optimization'] = 'False'
        r = self.doctor(edit)
        self.assertEqual(1, r['exit'])
        self.assertEqual('fail', r['by_name']['option']['result'])
        self.assertIn('enable_clone_optimization = True',
                      r['by_name']['option']['fix'])

    def test_no_service_token(self):
        def edit(p):
            p['service_user']['send_service_user_token'] = 'False'
        r = self.doctor(edit)
        self.assertEqual(1, r['exit'])
        self.assertEqual('fail', r['by_name']['service-token']['result'])

    def test_glance_unreachable(self):
        def edit(p):
            p['DEFAULT']['glance_api_servers'] = 'http://127.0.0.1:9'
            p['DEFAULT']['glance_num_retries'] = '0'
        r = self.doctor(edit)
        self.assertEqual(1, r['exit'])
        self.assertEqual('fail', r['by_name']['glance']['result'])

    def test_wrong_ceph_user(self):
        def edit(p):
            p[base.BACKEND]['rbd_user'] = 'nobody'
            p[base.BACKEND]['rados_connect_timeout'] = '5'
            p[base.BACKEND]['rados_connection_retries'] = '1'
        r = self.doctor(edit)
        self.assertEqual(1, r['exit'])
        self.assertEqual('fail', r['by_name']['ceph']['result'])

    def test_cinder_user_cannot_write_images_pool(self):
        user = 'cinder-ro-doctor'
        base.limited_cinder_user(self, user)

        def edit(p):
            p[base.BACKEND]['rbd_user'] = user
        r = self.doctor(edit)
        self.assertEqual(1, r['exit'])
        self.assertEqual('fail',
                         r['by_name']['images-pool-write']['result'])
        self.assertIn('profile rbd pool=images',
                      r['by_name']['images-pool-write']['fix'])

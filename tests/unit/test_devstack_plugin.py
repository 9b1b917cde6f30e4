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

"""devstack/plugin.sh, phase by phase, with stand-ins for DevStack's functions.

DevStack cannot run here. Each test sources devstack/override-defaults,
devstack/settings and devstack/plugin.sh in a bash whose DevStack functions
(iniset, setup_develop, is_service_enabled, configure_keystoneauth as
DevStack writes it, ...) only record their calls, then checks the calls.
"""

import os
import shutil
import subprocess
import tempfile

import testtools

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
DEVSTACK = os.path.join(ROOT, 'devstack')
DRIVER = 'cinder_rbd_upload_clone.driver.RBDUploadCloneDriver'

STUBS = r'''
record() { printf '%s\n' "$*" >> "$CALLS"; }
iniset() { record iniset "$@"; }
setup_develop() { record setup_develop "$@"; }
pip_install() { record pip_install "$@"; }
get_or_add_user_project_role() { record role "$@"; }
echo_summary() { :; }
warn() { record warn "$@"; }
die() { record die "$@"; exit 3; }
define_plugin() { record define_plugin "$@"; }
plugin_requires() { record plugin_requires "$@"; }
is_service_enabled() {
    local s
    for s in "$@"; do
        [[ ",$ENABLED_SERVICES," == *",$s,"* ]] && return 0
    done
    return 1
}
# DevStack's own (functions-common), to the letter of its behaviour.
trueorfalse() {
    local default=$1 testval=${!2:-}
    [[ -z "$testval" ]] && { echo "$default"; return; }
    [[ "0 no No NO false False FALSE off Off OFF" =~ "$testval" ]] && \
        { echo "False"; return; }
    [[ "1 yes Yes YES true True TRUE on On ON" =~ "$testval" ]] && \
        { echo "True"; return; }
    echo "$default"
}
# DevStack's lib/keystone configure_keystoneauth.
configure_keystoneauth() {
    iniset $1 $3 auth_type password
    iniset $1 $3 interface public
    iniset $1 $3 auth_url $KEYSTONE_SERVICE_URI
    iniset $1 $3 username $2
    iniset $1 $3 password $SERVICE_PASSWORD
    iniset $1 $3 user_domain_name "$SERVICE_DOMAIN_NAME"
    iniset $1 $3 project_name $SERVICE_PROJECT_NAME
    iniset $1 $3 project_domain_name "$SERVICE_DOMAIN_NAME"
}
cinder-rbd-upload-clone() { record doctor "$@"; return ${DOCTOR_RC:-0}; }
'''

RUN = r'''
source "$DEVSTACK/override-defaults"
source "$DEVSTACK/settings"
source "$DEVSTACK/plugin.sh" "$MODE" "$PHASE"
for v in GLANCE_ENABLE_MULTIPLE_STORES CINDER_USE_SERVICE_TOKEN \
         RBD_UPLOAD_CLONE_DIR RBD_UPLOAD_CLONE_ENABLED; do
    record var $v "${!v}"
done
'''


class DevstackPluginTestCase(testtools.TestCase):

    def setUp(self):
        super(DevstackPluginTestCase, self).setUp()
        if not shutil.which('bash'):
            self.skipTest('no bash')
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)

    def run_phase(self, mode, phase='', **env):
        calls = os.path.join(self.tmp, 'calls')
        open(calls, 'w').close()
        base = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
                'CALLS': calls, 'DEVSTACK': DEVSTACK,
                'MODE': mode, 'PHASE': phase,
                'CINDER_CONF': '/etc/cinder/cinder.conf',
                'TEMPEST_CONFIG': '/opt/stack/tempest/etc/tempest.conf',
                'CINDER_ENABLED_BACKENDS': 'ceph:ceph',
                'ENABLED_SERVICES': 'key,g-api,cinder,c-api,c-vol,c-sch,'
                                    'tempest',
                'KEYSTONE_SERVICE_URI': 'http://10.0.0.1/identity',
                'SERVICE_PASSWORD': 'secret',
                'SERVICE_PROJECT_NAME': 'service',
                'SERVICE_DOMAIN_NAME': 'Default',
                'LINENO': '0'}
        base.update(env)
        proc = subprocess.run(['bash', '-c', STUBS + RUN], env=base,
                              capture_output=True, text=True, timeout=60)
        with open(calls) as f:
            lines = [line.split() for line in f.read().splitlines()]
        return proc.returncode, lines

    @staticmethod
    def ini(lines, path):
        conf = {}
        for line in lines:
            if line[0] == 'iniset' and line[1] == path:
                conf.setdefault(line[2], {})[line[3]] = ' '.join(line[4:])
        return conf

    @staticmethod
    def var(lines, name):
        for line in lines:
            if line[:2] == ['var', name]:
                return ' '.join(line[2:])
        return None

    def test_settings_and_defaults(self):
        rc, lines = self.run_phase('source')
        self.assertEqual(0, rc)
        self.assertIn(['define_plugin', 'cinder-rbd-upload-clone'], lines)
        self.assertIn(['plugin_requires', 'cinder-rbd-upload-clone',
                       'devstack-plugin-ceph'], lines)
        self.assertEqual('True', self.var(lines,
                                          'GLANCE_ENABLE_MULTIPLE_STORES'))
        self.assertEqual('True', self.var(lines, 'CINDER_USE_SERVICE_TOKEN'))
        self.assertEqual(ROOT, self.var(lines, 'RBD_UPLOAD_CLONE_DIR'))
        self.assertEqual('True', self.var(lines, 'RBD_UPLOAD_CLONE_ENABLED'))
        # No phase: nothing configured.
        self.assertEqual([], [line for line in lines
                              if line[0] in ('iniset', 'setup_develop')])

    def test_user_settings_win(self):
        rc, lines = self.run_phase('source',
                                   GLANCE_ENABLE_MULTIPLE_STORES='False',
                                   RBD_UPLOAD_CLONE_ENABLED='no')
        self.assertEqual('False', self.var(lines,
                                           'GLANCE_ENABLE_MULTIPLE_STORES'))
        self.assertEqual('False', self.var(lines, 'RBD_UPLOAD_CLONE_ENABLED'))

    def test_install_phase(self):
        rc, lines = self.run_phase('stack', 'install')
        self.assertEqual(0, rc)
        self.assertIn(['setup_develop', ROOT], lines)
        self.assertEqual({}, self.ini(lines, '/etc/cinder/cinder.conf'))

    def test_post_config_phase(self):
        rc, lines = self.run_phase(
            'stack', 'post-config',
            CINDER_ENABLED_BACKENDS='ceph:ceph,lvm:lvmdriver-1')
        self.assertEqual(0, rc)
        conf = self.ini(lines, '/etc/cinder/cinder.conf')
        self.assertEqual({'volume_driver': DRIVER,
                          'enable_clone_optimization': 'True',
                          'clone_upload_flatten': 'never',
                          'clone_upload_gc_interval': '30'}, conf['ceph'])
        self.assertNotIn('lvmdriver-1', conf)
        for section in ('glance', 'service_user'):
            self.assertEqual('password', conf[section]['auth_type'])
            self.assertEqual('cinder', conf[section]['username'])
            self.assertEqual('service', conf[section]['project_name'])
            self.assertEqual('http://10.0.0.1/identity',
                             conf[section]['auth_url'])
        self.assertEqual('True',
                         conf['service_user']['send_service_user_token'])
        self.assertIn(['role', 'admin', 'cinder', 'service', 'Default',
                       'Default'], lines)
        self.assertEqual({}, self.ini(
            lines, '/opt/stack/tempest/etc/tempest.conf'))

    def test_post_config_option_off_and_flatten(self):
        rc, lines = self.run_phase('stack', 'post-config',
                                   RBD_UPLOAD_CLONE_ENABLED='False',
                                   RBD_UPLOAD_CLONE_FLATTEN='background')
        conf = self.ini(lines, '/etc/cinder/cinder.conf')
        self.assertEqual(DRIVER, conf['ceph']['volume_driver'])
        self.assertEqual('False', conf['ceph']['enable_clone_optimization'])
        self.assertEqual('background', conf['ceph']['clone_upload_flatten'])

    def test_post_config_needs_multiple_stores(self):
        rc, lines = self.run_phase('stack', 'post-config',
                                   GLANCE_ENABLE_MULTIPLE_STORES='False')
        self.assertEqual(3, rc)
        self.assertEqual('die', lines[-1][0])
        self.assertEqual({}, self.ini(lines, '/etc/cinder/cinder.conf'))

    def test_post_config_without_cinder(self):
        rc, lines = self.run_phase('stack', 'post-config',
                                   ENABLED_SERVICES='key,g-api')
        self.assertEqual(0, rc)
        self.assertEqual({}, self.ini(lines, '/etc/cinder/cinder.conf'))

    def test_extra_phase_runs_doctor(self):
        rc, lines = self.run_phase('stack', 'extra')
        self.assertEqual(0, rc)
        self.assertIn(['doctor', 'doctor', '--config-file',
                       '/etc/cinder/cinder.conf', '--backend', 'ceph'],
                      lines)
        self.assertNotIn('warn', [line[0] for line in lines])

    def test_extra_phase_doctor_failure(self):
        rc, lines = self.run_phase('stack', 'extra', DOCTOR_RC='1')
        self.assertEqual(0, rc)
        self.assertIn('warn', [line[0] for line in lines])
        rc, lines = self.run_phase('stack', 'extra', DOCTOR_RC='1',
                                   RBD_UPLOAD_CLONE_DOCTOR_STRICT='True')
        self.assertEqual(3, rc)
        self.assertEqual('die', lines[-1][0])

    def test_test_config_phase(self):
        rc, lines = self.run_phase('stack', 'test-config')
        self.assertEqual(0, rc)
        conf = self.ini(lines, '/opt/stack/tempest/etc/tempest.conf')
        self.assertEqual({'enabled': 'True', 'expect_clone': 'True',
                          'admin_location_checks': 'True',
                          'collector_timeout': '90'},
                         conf['rbd_upload_clone'])
        self.assertEqual({}, self.ini(lines, '/etc/cinder/cinder.conf'))

    def test_test_config_without_tempest(self):
        rc, lines = self.run_phase('stack', 'test-config',
                                   ENABLED_SERVICES='cinder,c-vol')
        self.assertEqual(0, rc)
        self.assertEqual({}, self.ini(
            lines, '/opt/stack/tempest/etc/tempest.conf'))

    def test_unstack_and_clean_do_nothing(self):
        for mode in ('unstack', 'clean'):
            rc, lines = self.run_phase(mode)
            self.assertEqual(0, rc)
            self.assertEqual([], [line for line in lines
                                  if line[0] not in ('var', 'define_plugin',
                                                     'plugin_requires')])

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

"""Options: Cinder's own enable_clone_optimization, when it has one."""

import os
import subprocess
import sys
import textwrap

from oslo_config import cfg
import testtools

from cinder_rbd_upload_clone import options

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

# What a future Cinder could register: same name, its own help and default.
UPSTREAM_OPT = cfg.BoolOpt('enable_clone_optimization', default=True,
                           help="Cinder's own option.")


class RegisterTestCase(testtools.TestCase):

    def _ours(self):
        # Fresh copies: the module's list may already hold Cinder's.
        return [cfg.BoolOpt('enable_clone_optimization', default=False,
                            help='ours'),
                cfg.IntOpt('clone_upload_gc_grace', default=3600)]

    def test_registers_ours_when_cinder_has_none(self):
        conf = cfg.ConfigOpts()
        ours = self._ours()
        used, theirs = options._register(ours, 'backend_defaults', conf)
        self.assertEqual(ours, used)
        self.assertEqual([], theirs)
        conf([], default_config_files=[])
        self.assertFalse(conf.backend_defaults.enable_clone_optimization)

    def test_uses_cinders_option_when_registered_first(self):
        conf = cfg.ConfigOpts()
        conf.register_opt(UPSTREAM_OPT, group='backend_defaults')
        ours = self._ours()
        used, theirs = options._register(ours, 'backend_defaults', conf)
        self.assertIs(UPSTREAM_OPT, used[0])
        self.assertEqual([UPSTREAM_OPT], theirs)
        self.assertIs(ours[1], used[1])
        conf([], default_config_files=[])
        # Cinder's default, not ours.
        self.assertTrue(conf.backend_defaults.enable_clone_optimization)

    def test_same_option_twice_is_no_error(self):
        conf = cfg.ConfigOpts()
        used, theirs = options._register(self._ours(), 'g', conf)
        again, theirs = options._register(self._ours(), 'g', conf)
        self.assertEqual(used, again)

    def test_list_opts_leaves_cinders_option_to_cinder(self):
        names = [o.name for _g, opts in options.list_opts() for o in opts]
        if options.upstream_opts:
            self.assertNotIn('enable_clone_optimization', names)
        else:
            self.assertIn('enable_clone_optimization', names)


# Run in a fresh interpreter: a Cinder that registers the option before this
# package is imported, then a backend section that turns it on.
UPSTREAM_FIRST = textwrap.dedent('''
    import sys
    import tempfile
    from oslo_config import cfg
    from cinder.volume import configuration

    upstream = cfg.BoolOpt('enable_clone_optimization', default=False,
                           help="Cinder's own option.")
    cfg.CONF.register_opt(upstream, group=configuration.SHARED_CONF_GROUP)

    from cinder_rbd_upload_clone import driver
    from cinder_rbd_upload_clone import options

    assert options.upstream_opts == [upstream], options.upstream_opts
    assert options.upload_clone_opts[0] is upstream
    with tempfile.NamedTemporaryFile('w', suffix='.conf') as f:
        f.write('[DEFAULT]\\nenabled_backends = ceph\\n'
                '[ceph]\\nenable_clone_optimization = True\\n'
                'clone_upload_gc_grace = 7\\n')
        f.flush()
        cfg.CONF(['--config-file', f.name], project='cinder')
    conf = configuration.Configuration(options.upload_clone_opts,
                                       config_group='ceph')
    drv = driver.RBDUploadCloneDriver(configuration=conf)
    assert drv._clone_upload_enabled is True
    assert conf.clone_upload_gc_grace == 7
    print('ok')
''')


class UpstreamOptionTestCase(testtools.TestCase):

    def test_import_and_driver_with_cinders_option(self):
        proc = subprocess.run([sys.executable, '-c', UPSTREAM_FIRST],
                              cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        self.assertEqual('ok', proc.stdout.strip().splitlines()[-1])

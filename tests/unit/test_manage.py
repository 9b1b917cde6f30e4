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

"""The cinder-rbd-upload-clone command line, as oslo.config parses it."""

import io
import json
import os
import subprocess
import sys
import tempfile
from unittest import mock

import fixtures
from oslo_config import cfg
import testtools

from cinder_rbd_upload_clone.cmd import leak_check
from cinder_rbd_upload_clone.cmd import manage
from cinder_rbd_upload_clone import journal

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


class ParseTestCase(testtools.TestCase):

    def setUp(self):
        super(ParseTestCase, self).setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.conf_file = os.path.join(tmp, 'cinder.conf')
        self.conf_dir = os.path.join(tmp, 'cinder.conf.d')
        os.mkdir(self.conf_dir)
        with open(self.conf_file, 'w') as f:
            f.write('[DEFAULT]\n')

    def parse(self, *argv):
        conf = cfg.ConfigOpts()
        return conf, manage.parse_args(list(argv), conf,
                                       default_config_files=[])

    def test_doctor_flags_after_the_command(self):
        # The form of earlier releases, and of the functional tests.
        conf, cmd = self.parse('doctor', '--config-file', self.conf_file,
                               '--backend', 'ceph', '--format', 'json',
                               '--volume-type', 't', '--glance-ceph-user',
                               'glance', '--glance-keyring', '/k')
        self.assertEqual([self.conf_file], conf.config_file)
        self.assertEqual('doctor', cmd.name)
        self.assertIs(manage.cmd_doctor, cmd.func)
        self.assertEqual(('ceph', 'json', 't', 'glance', '/k'),
                         (cmd.backend, cmd.format, cmd.volume_type,
                          cmd.glance_ceph_user, cmd.glance_keyring))

    def test_config_options_before_the_command(self):
        conf, cmd = self.parse('--config-file', self.conf_file,
                               '--config-dir', self.conf_dir, 'doctor',
                               '--backend', 'ceph')
        self.assertEqual([self.conf_file], conf.config_file)
        self.assertEqual([self.conf_dir], conf.config_dir)
        self.assertEqual('text', cmd.format)

    def test_equals_forms_and_several_files(self):
        other = self.conf_file + '.2'
        with open(other, 'w') as f:
            f.write('[DEFAULT]\n')
        conf, cmd = self.parse('collect', '--config-file=%s' % self.conf_file,
                               '--backend', 'ceph', '--config-file', other,
                               '--config-dir=%s' % self.conf_dir)
        self.assertEqual([self.conf_file, other], conf.config_file)
        self.assertEqual([self.conf_dir], conf.config_dir)
        self.assertEqual(('collect', 'ceph', False),
                         (cmd.name, cmd.backend, cmd.startup))

    def test_collect_startup(self):
        _conf, cmd = self.parse('collect', '--backend', 'b', '--startup')
        self.assertTrue(cmd.startup)
        self.assertIs(manage.cmd_collect, cmd.func)

    def test_leak_check_flags(self):
        _conf, cmd = self.parse('leak-check', '--ceph-conf', '/c', '--id',
                                'u', '--openrc', '/o', '--volumes-pool', 'v',
                                '--images-pool', 'i', '--json', '--backend',
                                'ceph')
        self.assertIs(manage.cmd_leak_check, cmd.func)
        self.assertEqual(('/c', 'u', '/o', 'v', 'i', True, 'ceph'),
                         (cmd.ceph_conf, cmd.id, cmd.openrc,
                          cmd.volumes_pool, cmd.images_pool, cmd.json,
                          cmd.backend))

    def test_leak_check_defaults(self):
        _conf, cmd = self.parse('leak-check')
        self.assertEqual((None, None, None, None, None, False, None),
                         (cmd.ceph_conf, cmd.id, cmd.openrc,
                          cmd.volumes_pool, cmd.images_pool, cmd.json,
                          cmd.backend))

    def test_backend_required_for_doctor_and_collect(self):
        for command in ('doctor', 'collect'):
            with mock.patch('sys.stderr', io.StringIO()):
                self.assertRaises(SystemExit, self.parse, command)

    def test_command_required(self):
        with mock.patch('sys.stderr', io.StringIO()) as err:
            e = self.assertRaises(SystemExit, self.parse,
                                  '--config-file', self.conf_file)
        self.assertEqual(2, e.code)
        self.assertIn('command', err.getvalue())

    def test_cinders_default_config_files(self):
        conf = cfg.ConfigOpts()
        with mock.patch.object(cfg, 'find_config_files',
                               return_value=[self.conf_file]) as find:
            manage.parse_args(['doctor', '--backend', 'ceph'], conf)
        args = find.call_args
        self.assertIn('cinder', list(args[0]) + list(args[1].values()))
        self.assertEqual([self.conf_file], conf.config_file)
        self.assertEqual('cinder', conf.project)

    def test_config_flags_first(self):
        self.assertEqual(
            ['--config-file', 'a', '--config-dir=d', 'doctor', '--backend',
             'b'],
            manage._config_flags_first(['doctor', '--config-file', 'a',
                                        '--backend', 'b', '--config-dir=d']))


class MainTestCase(testtools.TestCase):
    """The installed command, in its own process."""

    def run_cli(self, *argv, env=None):
        return subprocess.run(
            [sys.executable, '-m', 'cinder_rbd_upload_clone.cmd.manage'] +
            list(argv), capture_output=True, text=True, timeout=120,
            env=env, cwd=ROOT)

    def test_version(self):
        from cinder_rbd_upload_clone import version
        proc = self.run_cli('--version')
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertEqual(version.release_string(), proc.stdout.strip())

    def test_unknown_backend_is_an_error(self):
        with tempfile.NamedTemporaryFile('w', suffix='.conf') as f:
            f.write('[DEFAULT]\nenabled_backends = other\n')
            f.flush()
            proc = self.run_cli('doctor', '--config-file', f.name,
                                '--backend', 'ceph')
        self.assertEqual(manage.EXIT_ERROR, proc.returncode)
        self.assertIn("backend 'ceph' is not in enabled_backends (other)",
                      proc.stderr)

    def test_leak_check_error_exit(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        proc = self.run_cli('leak-check', '--config-file', os.devnull,
                            env=env)
        self.assertEqual(leak_check.EXIT_ERROR, proc.returncode)
        self.assertIn('leak-check: ValueError: no admin credentials',
                      proc.stderr)


class ClusterChecksTestCase(testtools.TestCase):
    """The doctor reports the clustering the driver relies on."""

    def setUp(self):
        super(ClusterChecksTestCase, self).setUp()
        from cinder import coordination  # noqa: F401
        from oslo_config import fixture as config_fixture
        self.conf = self.useFixture(config_fixture.Config(manage.CONF))
        manage._conf_cluster()
        self.driver = mock.Mock(host='hostA@ceph')
        self.driver.configuration.safe_get.return_value = None
        self.driver.configuration.clone_upload_gc_grace = 3600
        self.reach = self.useFixture(fixtures.MockPatchObject(
            manage, 'coordination_reachable',
            return_value=(True, 'reachable'))).mock

    def checks(self):
        return {c.name: c for c in manage.cluster_checks(self.driver)}

    def test_single_host(self):
        checks = self.checks()
        self.assertIn('no [DEFAULT] cluster', checks['cluster'].detail)
        self.assertIn('hostA@ceph', checks['cluster'].detail)
        self.assertTrue(checks['coordination'].ok)
        self.assertIn('file://', checks['coordination'].detail)
        self.reach.assert_not_called()
        self.assertTrue(all(c.ok for c in checks.values()))
        self.assertFalse(any(c.affects_uploads for c in checks.values()))

    def test_cluster_needs_a_shared_coordination_backend(self):
        self.conf.config(cluster='prod')
        checks = self.checks()
        self.assertIn('active/active in cluster prod',
                      checks['cluster'].detail)
        self.assertFalse(checks['coordination'].ok)
        self.assertIn('etcd3+http', checks['coordination'].fix)

    def test_cluster_with_etcd(self):
        self.conf.config(cluster='prod')
        self.conf.config(backend_url='etcd3+http://user:secret@etcd:2379',
                         group='coordination')
        checks = self.checks()
        self.reach.assert_called_once_with(
            'etcd3+http://user:secret@etcd:2379')
        self.assertTrue(checks['coordination'].ok)
        self.assertIn('etcd3+http://***@etcd:2379',
                      checks['coordination'].detail)
        self.assertNotIn('secret', checks['coordination'].detail)

    def test_unreachable_coordination(self):
        self.conf.config(backend_url='etcd3+http://etcd:2379',
                         group='coordination')
        self.reach.return_value = (False, 'ConnectionError: refused')
        checks = self.checks()
        self.assertFalse(checks['coordination'].ok)
        self.assertIn('refused', checks['coordination'].detail)

    def test_shared_backend_host_is_named(self):
        self.conf.config(cluster='prod')
        self.driver.configuration.safe_get.return_value = 'rbd:volumes'
        self.assertIn('backend_host = rbd:volumes: every host of the '
                      'cluster needs its own', self.checks()['cluster'].detail)

    def test_grace_must_exceed_two_heartbeats(self):
        self.driver.configuration.clone_upload_gc_grace = 90
        check = self.checks()['collector-grace']
        self.assertFalse(check.ok)
        self.assertIn('120 or more', check.fix)

    def test_coordination_reachable_starts_a_tooz_member(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        self.assertEqual((True, 'reachable'),
                         REAL_REACHABLE('file://%s' % tmp))
        ok, why = REAL_REACHABLE('etcd3+http://127.0.0.1:1')
        self.assertFalse(ok)


REAL_REACHABLE = manage.coordination_reachable


class LeakCheckTestCase(testtools.TestCase):

    INVENTORY = {
        ('volumes', 'volume-a'): {'snapshot-s': [],
                                  'upload-img.clone_snap': [('images',
                                                             'img')]},
        ('volumes', 'volume-gone'): {},
        ('volumes', 'volume-b.deleted'): {'x.clone_snap': []},
        ('volumes', 'volume-c'): {'upload-old.clone_snap': []},
        ('images', 'img'): {'snap': []},
        ('images', 'orphan'): {'snap': []},
        ('other', 'x'): {},
    }

    def test_leaks(self):
        found = leak_check.leaks(self.INVENTORY, {'a', 'c'}, {'s'}, {'img'})
        self.assertEqual(
            [('orphan-image', 'images/orphan'),
             ('orphan-image', 'images/orphan@snap'),
             ('deleted-volume-unneeded', 'volumes/volume-b.deleted'),
             ('orphan-clone-snapshot',
              'volumes/volume-b.deleted@x.clone_snap'),
             ('orphan-upload-snapshot',
              'volumes/volume-c@upload-old.clone_snap'),
             ('orphan-volume', 'volumes/volume-gone')], found)

    def test_nothing_leaks(self):
        inventory = {('volumes', 'volume-a'): {}, ('images', 'i'): {}}
        self.assertEqual([], leak_check.leaks(inventory, {'a'}, set(),
                                              {'i'}))

    def test_upload_in_flight_is_not_a_leak(self):
        found = leak_check.leaks(self.INVENTORY, {'a', 'c'}, {'s'}, {'img'},
                                 in_flight={'old'})
        self.assertNotIn(('orphan-upload-snapshot',
                          'volumes/volume-c@upload-old.clone_snap'), found)
        self.assertEqual(5, len(found))

    def test_uploads_in_flight_are_those_whose_owner_beats(self):
        now = 10000.0
        records = {
            'fresh': journal.new_record('fresh', 'volume-a', 'images',
                                        'h@b', now=now - 60),
            'edge': journal.new_record(
                'edge', 'volume-a', 'images', 'h@b',
                now=now - leak_check.IN_FLIGHT_SECONDS),
            'dead': journal.new_record(
                'dead', 'volume-a', 'images', 'h@b',
                now=now - leak_check.IN_FLIGHT_SECONDS - 1),
        }
        fake_rados = mock.MagicMock()
        with mock.patch.dict('sys.modules', {'rados': fake_rados}), \
                mock.patch.object(journal.Journal, 'records',
                                  return_value=records):
            got = leak_check.uploads_in_flight('/c', 'admin', 'volumes',
                                               now=now)
        self.assertEqual({'fresh', 'edge'}, got)
        fake_rados.Rados.return_value.open_ioctx.assert_called_once_with(
            'volumes')
        fake_rados.Rados.return_value.shutdown.assert_called_once_with()

    def _run(self, inventory, as_json=False, in_flight=()):
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.object(leak_check, 'owners',
                               return_value=({'a', 'c'}, {'s'}, {'img'})), \
                mock.patch.object(leak_check, 'uploads_in_flight',
                                  return_value=set(in_flight)), \
                mock.patch.object(leak_check, 'rbd_inventory',
                                  return_value=(inventory, [])) as inv:
            code = leak_check.run('/ceph.conf', 'admin', None, 'volumes',
                                  'images', as_json, out=out, err=err)
        inv.assert_called_once_with('/ceph.conf', 'admin',
                                    ('volumes', 'images'))
        return code, out.getvalue(), err.getvalue()

    def test_run_text_names_uploads_in_flight(self):
        code, out, _err = self._run(self.INVENTORY, in_flight={'old'})
        self.assertEqual(leak_check.EXIT_LEAKS, code)
        lines = out.splitlines()
        self.assertEqual('1 upload(s) in flight (journal), not counted: old',
                         lines[-2])
        self.assertEqual('5 leak(s) among 7 RBD image(s)', lines[-1])

    def test_run_text(self):
        code, out, _err = self._run(self.INVENTORY)
        self.assertEqual(leak_check.EXIT_LEAKS, code)
        lines = out.splitlines()
        self.assertEqual('LEAK orphan-image             images/orphan',
                         lines[0])
        self.assertEqual('6 leak(s) among 7 RBD image(s)', lines[-1])

    def test_run_clean_json(self):
        code, out, _err = self._run({('volumes', 'volume-a'): {}}, True)
        self.assertEqual(leak_check.EXIT_CLEAN, code)
        self.assertEqual({'leaks': [], 'in_flight': [], 'rbd_images': 1},
                         json.loads(out))

    def test_run_error(self):
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.object(leak_check, 'owners',
                               side_effect=RuntimeError('boom')):
            code = leak_check.run('/c', 'admin', None, 'v', 'i', False,
                                  out=out, err=err)
        self.assertEqual(leak_check.EXIT_ERROR, code)
        self.assertEqual('leak-check: RuntimeError: boom\n', err.getvalue())
        self.assertEqual('', out.getvalue())

    def _settle(self, looks, settle):
        """run() with --settle over ``looks``, one per check.

        A fake clock: each sleep moves it on by its argument.
        """
        now = [0.0]

        def sleep(seconds):
            now[0] += seconds
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.object(leak_check, 'check',
                               side_effect=looks) as check:
            code = leak_check.run('/c', 'admin', None, 'v', 'i', False,
                                  out=out, err=err, settle=settle,
                                  sleep=sleep, clock=lambda: now[0])
        return code, out.getvalue(), check.call_count, now[0]

    def test_settle_reports_nothing_once_the_collector_swept(self):
        hidden = [('deleted-volume-unneeded', 'v/volume-x.deleted')]
        code, out, looks, waited = self._settle(
            [(hidden, set(), 3), (hidden, set(), 3), ([], set(), 2)], 60)
        self.assertEqual(leak_check.EXIT_CLEAN, code)
        self.assertEqual('0 leak(s) among 2 RBD image(s)\n', out)
        self.assertEqual(3, looks)
        self.assertEqual(2 * leak_check.SETTLE_INTERVAL, waited)

    def test_settle_reports_what_stays(self):
        hidden = [('deleted-volume-unneeded', 'v/volume-x.deleted')]
        code, out, looks, waited = self._settle(
            [(hidden, set(), 3)] * 10, 12)
        self.assertEqual(leak_check.EXIT_LEAKS, code)
        self.assertEqual(['LEAK deleted-volume-unneeded  v/volume-x.deleted',
                          '1 leak(s) among 3 RBD image(s) after 12 s of '
                          'settling'], out.splitlines())
        # 0, 5, 10, 15: the look at 15 s is past the 12 s.
        self.assertEqual(4, looks)
        self.assertEqual(15, waited)

    def test_no_settle_looks_once(self):
        code, out, looks, waited = self._settle(
            [([('trash', 'v/trash/1 (x)')], set(), 1), ([], set(), 1)], 0)
        self.assertEqual(leak_check.EXIT_LEAKS, code)
        self.assertEqual((1, 0), (looks, waited))

    def test_credentials_from_openrc_or_environment(self):
        with tempfile.NamedTemporaryFile('w') as f:
            f.write("# admin\nexport OS_USERNAME=admin\n"
                    "export OS_PASSWORD='s e'\nOS_IGNORED=1\n")
            f.flush()
            self.assertEqual({'OS_USERNAME': 'admin', 'OS_PASSWORD': 's e'},
                             leak_check.credentials(f.name))
        self.assertEqual({'OS_X': '1'}, leak_check.credentials(
            None, {'OS_X': '1', 'HOME': '/'}))

    def test_cmd_takes_defaults_from_the_backend(self):
        args = mock.Mock(ceph_conf=None, id=None, volumes_pool=None,
                         images_pool=None, openrc='/o', json=False,
                         backend='ceph', settle=0)
        config = mock.Mock(rbd_ceph_conf='/etc/ceph/x.conf',
                           rbd_user='cinder', rbd_pool='vols')
        with mock.patch.object(manage, 'backend_configuration',
                               return_value=config), \
                mock.patch.object(leak_check, 'run', return_value=0) as run:
            self.assertEqual(0, manage.cmd_leak_check(args))
        run.assert_called_once_with('/etc/ceph/x.conf', 'cinder', '/o',
                                    'vols', 'images', False, settle=0)

    def test_cmd_builtin_defaults(self):
        args = mock.Mock(ceph_conf=None, id=None, volumes_pool=None,
                         images_pool=None, openrc=None, json=True,
                         backend=None, settle=30)
        with mock.patch.object(leak_check, 'run', return_value=1) as run:
            self.assertEqual(1, manage.cmd_leak_check(args))
        run.assert_called_once_with('/etc/ceph/ceph.conf', 'admin', None,
                                    'volumes', 'images', True, settle=30)


class LeakCheckToolTestCase(testtools.TestCase):
    """tools/leak-check keeps its flags, output and exit codes."""

    TOOL = os.path.join(ROOT, 'tools', 'leak-check')

    def run_tool(self, *argv):
        cloud = self.useFixture(fixtures.TempDir()).path
        env = dict(os.environ, CLOUD_DIR=cloud)
        return subprocess.run([sys.executable, self.TOOL] + list(argv),
                              capture_output=True, text=True, timeout=120,
                              env=env, cwd=ROOT), cloud

    def test_flags(self):
        proc, _cloud = self.run_tool('--help')
        self.assertEqual(0, proc.returncode, proc.stderr)
        for flag in ('--ceph-conf', '--id', '--openrc', '--volumes-pool',
                     '--images-pool', '--settle', '--json'):
            self.assertIn(flag, proc.stdout)
        self.assertNotIn('--backend', proc.stdout)

    def test_missing_openrc_in_the_cloud_dir(self):
        proc, cloud = self.run_tool('--openrc', 'admin-openrc', '--json')
        self.assertEqual(2, proc.returncode)
        self.assertIn('leak-check: FileNotFoundError', proc.stderr)
        self.assertIn(os.path.join(cloud, 'admin-openrc'), proc.stderr)
        self.assertEqual('', proc.stdout)

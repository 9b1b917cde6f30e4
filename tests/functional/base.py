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

"""In-process driver against the real local cloud (tools/cloud up).

The driver runs in the test process with the backend section of the
cloud's cinder.conf, real Ceph (cephx user ``cinder``), real Keystone and
real glance-api. Faults are injected at one step at a time with
``mock.patch``; everything else is real. Each test records every RBD image
and snapshot in both pools before it starts and checks, at its end, that
nothing it did not expect is left.
"""

import configparser
import hashlib
import os
import subprocess
import sys
import time
import types

from unittest import mock

import fixtures
from glanceclient import client as glance_client
from keystoneauth1 import identity
from keystoneauth1 import service_token
from keystoneauth1 import session as ks_session
from oslo_config import cfg
import testtools

from cinder import context as cinder_context
from cinder.image import image_utils  # noqa: F401 (see stores.py)
from cinder.image import glance  # noqa: H306
from cinder.volume import configuration

from cinder_rbd_upload_clone import driver as our_driver
from cinder_rbd_upload_clone import mixin
from cinder_rbd_upload_clone import options

CONF = cfg.CONF
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CLOUD = os.environ.get('CLOUD_DIR', os.path.join(REPO, '.cloud'))
CINDER_CONF = os.path.join(CLOUD, 'cinder', 'cinder.conf')
CEPH_CONF = os.path.join(CLOUD, 'ceph.conf')
BACKEND = 'rbd-clone'
MiB = 1024 * 1024
_conf_loaded = False

sys.path.insert(0, os.path.join(REPO, 'tools'))
import cephlib  # noqa: E402
import cloudlib  # noqa: E402


def keystone_session(openrc='openrc'):
    env = cloudlib.read_openrc(openrc)
    auth = identity.Password(
        auth_url=env['OS_AUTH_URL'], username=env['OS_USERNAME'],
        password=env['OS_PASSWORD'], project_name=env['OS_PROJECT_NAME'],
        user_domain_name=env.get('OS_USER_DOMAIN_NAME', 'Default'),
        project_domain_name=env.get('OS_PROJECT_DOMAIN_NAME', 'Default'))
    return ks_session.Session(auth=auth)


def service_session():
    """Cinder's [service_user] credentials (they hold the service role).

    Sent as user and as service token: Glance 30 and 31 (2025.1, 2025.2)
    grant the service-only APIs on the service token's roles
    (``service_roles:service``), Glance 32 and later on the user's
    (``role:service or role:admin``).
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(CINDER_CONF)
    sect = parser['service_user']
    auth = identity.Password(
        auth_url=sect['auth_url'], username=sect['username'],
        password=sect['password'], project_name=sect['project_name'],
        user_domain_name=sect.get('user_domain_name', 'Default'),
        project_domain_name=sect.get('project_domain_name', 'Default'))
    return ks_session.Session(auth=service_token.ServiceTokenAuthWrapper(
        user_auth=auth, service_auth=auth))


def load_cinder_conf():
    global _conf_loaded
    if not os.path.exists(CINDER_CONF):
        raise RuntimeError('%s is missing: start the local cloud with '
                           '`tools/cloud up` first' % CINDER_CONF)
    if not _conf_loaded:
        CONF([], project='cinder', default_config_files=[CINDER_CONF])
        _conf_loaded = True


# The one Ceph helper of tools and tests (tools/cephlib.py).
Ceph = cephlib.Ceph


def cloud(*args):
    """tools/cloud, the one place that knows the services' processes.

    For example cloud('kill', 'cinder-volume') to crash it, cloud('up') to
    start it again.
    """
    proc = subprocess.run([sys.executable, os.path.join(
        REPO, 'tools', 'cloud')] + list(args), capture_output=True,
        text=True, timeout=600)
    if proc.returncode:
        raise AssertionError('tools/cloud %s failed (%d): %s' % (
            ' '.join(args), proc.returncode, proc.stdout + proc.stderr))
    return proc.stdout


def fake_volume(name, size_gb=1):
    vol_id = name[len('volume-'):]
    return types.SimpleNamespace(
        id=vol_id, name=name, name_id=vol_id, size=size_gb,
        encryption_key_id=None, volume_type_id='functional',
        volume_type=types.SimpleNamespace(extra_specs={}),
        admin_metadata={}, glance_metadata={}, multiattach=False,
        provider_location=None,
        volume_attachment=[])


class FunctionalTestCase(testtools.TestCase):
    """Driver of backend ``rbd-clone`` from the cloud's cinder.conf."""

    backend = BACKEND

    def setUp(self):
        super(FunctionalTestCase, self).setUp()
        # cinder-volume is monkey-patched: its uploads and flattens are green
        # threads that wait on eventlet's tpool for librbd calls. Here the
        # driver also runs in native threads (concurrent uploads, background
        # flattens), which cannot wait on tpool (its results wake only the
        # main thread's hub): the test hung once. Call librbd directly, as
        # tpool's own workers do; librados and librbd are thread-safe.
        self.useFixture(fixtures.MonkeyPatch(
            'eventlet.tpool.execute',
            lambda meth, *args, **kwargs: meth(*args, **kwargs)))
        load_cinder_conf()
        self.ceph = Ceph()
        self.addCleanup(self.ceph.close)
        self.before = self.ceph.inventory()
        self.mine = set()   # names of the test's volumes and images

        self.session = keystone_session()
        self.glance = glance_client.Client('2', session=self.session)
        self.context = cinder_context.RequestContext(
            user_id=self.session.get_user_id(),
            project_id=self.session.get_project_id(),
            auth_token=self.session.get_token(),
            service_catalog=[])

        # Register the backend group's options so tests can override them.
        configuration.Configuration(options.upload_clone_opts,
                                    config_group=self.backend)
        self.override('clone_upload_gc_interval', 0)
        self.driver = self.make_driver()

    def override(self, name, value, group=None):
        CONF.set_override(name, value, group=group or self.backend)
        self.addCleanup(CONF.clear_override, name, group=group or
                        self.backend)

    def make_driver(self):
        config = configuration.Configuration([], config_group=self.backend)
        driver = our_driver.RBDUploadCloneDriver(
            configuration=config, host='functional@%s' % self.backend)
        driver.do_setup(self.context)
        driver.check_for_setup_error()
        return driver

    def new_volume(self, size=64 * MiB):
        name, sha = self.ceph.create_volume(size)
        self.mine.add(name)
        self.addCleanup(self.ceph.remove, 'volumes', name + '.deleted')
        self.addCleanup(self.ceph.remove, 'volumes', name)
        return fake_volume(name), sha

    def new_image(self, disk_format='raw', container_format='bare'):
        image = self.glance.images.create(
            name='functional-%s' % self.id().rsplit('.', 1)[-1],
            disk_format=disk_format, container_format=container_format)
        self.mine.add(image['id'])
        self.addCleanup(self.delete_image, image['id'])
        return {'id': image['id'], 'disk_format': disk_format,
                'container_format': container_format}

    def delete_image(self, image_id):
        try:
            self.glance.images.delete(image_id)
        except Exception:
            pass

    def upload(self, volume, image_meta):
        self.driver.copy_volume_to_image(
            self.context, volume, glance.GlanceImageService(), image_meta)

    def upload_logged(self, volume, image_meta):
        """Upload; return the driver's one log line's values."""
        with mock.patch.object(mixin.LOG, 'info',
                               wraps=mixin.LOG.info) as info:
            self.upload(volume, image_meta)
        lines = [c[0][1] for c in info.call_args_list
                 if c[0][0].startswith('Upload of volume')]
        self.assertEqual(1, len(lines), lines)
        return lines[0]

    def assert_fell_back_at(self, line, step):
        """The clone path was tried and failed at ``step``, then generic."""
        self.assertEqual(('generic copy', 'done'),
                         (line['path'], line['outcome']))
        self.assertIn("clone path step '%s' failed" % step, line['reason'])

    def journal(self):
        """The upload journal: {image id: record} (admin view)."""
        return self.ceph.journal()

    def image(self, image_id):
        return self.glance.images.get(image_id)

    def wait_hash(self, image_id, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            image = self.image(image_id)
            if cloudlib.hashed(image):
                return image
            time.sleep(0.5)
        self.fail('Glance set no os_hash_value on %s in %ss' %
                  (image_id, timeout))

    def download_sha256(self, image_id):
        digest = hashlib.sha256()
        for chunk in self.glance.images.data(image_id):
            digest.update(chunk)
        return digest.hexdigest()

    def left_behind(self, expected=()):
        """What exists now that did not before the test, minus expected.

        Only RBD images named after the test's own volumes and images (and
        their snapshots) count: the cloud's cinder-volume collector sweeps
        the same pools meanwhile and may settle what earlier tests left.
        """
        now = self.ceph.inventory()
        return {k: v for k, v in now.items()
                if self.before.get(k) != v and k not in expected and
                any(name in k for name in self.mine)}


def limited_cinder_user(test, user):
    """A real cephx user: rw on volumes, read-only on images; removed after.

    Returns its keyring path (in .cloud, where ceph.conf points).
    """
    keyring = os.path.join(CLOUD, 'ceph.client.%s.keyring' % user)
    subprocess.run(
        ['ceph', '-c', CEPH_CONF, 'auth', 'get-or-create',
         'client.%s' % user, 'mon', 'profile rbd', 'osd',
         'profile rbd pool=volumes, profile rbd-read-only pool=images',
         '-o', keyring], check=True, capture_output=True)
    test.addCleanup(subprocess.run, ['ceph', '-c', CEPH_CONF, 'auth', 'del',
                                     'client.%s' % user],
                    capture_output=True)
    test.addCleanup(os.unlink, keyring)
    return keyring

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

"""Cleanup never removes data a live image can still reach (real cloud).

Each test builds, on the real cluster and the real Glance, a situation in
which a removal would be wrong unless the driver has positive evidence
that nothing can still reach the data: a lost answer to the location
call, a deactivated image, a Glance user who cannot see the image, Glance
found through the catalog only, a crash after a flattened clone, an
upload that starts while the start-up sweep runs. The image's bytes are
read back after the cleanup ran.
"""

import threading
from unittest import mock
import uuid

from keystoneauth1 import exceptions as ks_exc

from cinder_rbd_upload_clone import location
from cinder_rbd_upload_clone import options
from tests.functional import base
from tests.functional import glance_proxy

LOCATIONS = r'^/v2/images/[^/]+/locations$'


def served_then_timeout(real=location.wait_active):
    """wait_active that waits for the real activation, then says timeout.

    Leaves a clone Glance serves but the driver could not confirm, as a
    slow Glance does: the upload keeps the clone for the collector.
    """
    def wait(context, image_id, *args, **kwargs):
        real(context, image_id, *args, **kwargs)
        raise location.ActivationTimeout('injected after activation')
    return wait


class CleanupSafetyTestCase(base.FunctionalTestCase):

    def setUp(self):
        super(CleanupSafetyTestCase, self).setUp()
        self.admin = base.glance_client.Client(
            '2', session=base.keystone_session('admin-openrc'))

    def upload_unconfirmed(self, volume, meta):
        """An upload whose activation the driver could not confirm."""
        with mock.patch.object(location, 'wait_active',
                               side_effect=served_then_timeout()):
            self.assertRaises(location.ActivationTimeout, self.upload,
                              volume, meta)

    def collect(self, grace=0):
        self.override('clone_upload_gc_grace', grace)
        return self.driver.collect_upload_leftovers()

    def assert_clone_serves(self, image_id, sha):
        self.assertEqual('volumes',
                         self.ceph.parent('images', image_id)[0])
        self.assertEqual(sha, self.download_sha256(image_id))

    def test_location_answer_lost_after_glance_took_it(self):
        # Finding 1: the POST reaches Glance, its answer is lost;
        # Cinder's Glance client retries (glance_num_retries at its
        # default) and the retry meets 409. The clone must stay.
        proxy = glance_proxy.ProxyProcess(base.CONF.glance_api_servers[0])
        self.addCleanup(proxy.stop)
        base.CONF.set_override('glance_api_servers', [proxy.url])
        self.addCleanup(base.CONF.clear_override, 'glance_api_servers')
        self.assertGreater(base.CONF.glance_num_retries, 0)
        volume, sha = self.new_volume()
        meta = self.new_image()
        proxy.fail('POST', LOCATIONS, glance_proxy.FORWARD_DROP, times=1)
        self.upload(volume, meta)
        self.assertEqual([['POST', '/v2/images/%s/locations' % meta['id'],
                           glance_proxy.FORWARD_DROP]], proxy.hits)
        self.assertEqual('active', self.image(meta['id'])['status'])
        self.assert_clone_serves(meta['id'], sha)

    def test_collector_keeps_clone_of_deactivated_image(self):
        # Finding 2: a deactivated image is not an abandoned one.
        volume, sha = self.new_volume()
        meta = self.new_image()
        self.upload_unconfirmed(volume, meta)
        # Glance refuses to deactivate while it hashes the image (500).
        self.wait_hash(meta['id'])
        self.admin.images.deactivate(meta['id'])
        self.addCleanup(self.admin.images.reactivate, meta['id'])
        self.collect()
        self.admin.images.reactivate(meta['id'])
        self.assertEqual('active', self.image(meta['id'])['status'])
        self.assert_clone_serves(meta['id'], sha)

    def non_admin_glance_user(self):
        """Point [glance] at a real user with no admin role."""
        ks = base.keystone_session('admin-openrc')
        from keystoneclient.v3 import client as ks_client
        keystone = ks_client.Client(session=ks)
        name = 'noadmin-%s' % uuid.uuid4().hex[:8]
        project = keystone.projects.find(name='service')
        user = keystone.users.create(name, password=name,
                                     default_project=project)
        self.addCleanup(keystone.users.delete, user)
        for role in ('member', 'reader'):
            keystone.roles.grant(keystone.roles.find(name=role), user=user,
                                 project=project)
        for key, value in (('username', name), ('password', name)):
            base.CONF.set_override(key, value, group='glance')
            self.addCleanup(base.CONF.clear_override, key, group='glance')

    def test_collector_keeps_clone_hidden_from_its_glance_user(self):
        # Finding 2: a 404 from a user who cannot see other projects'
        # private images says nothing about the image.
        volume, sha = self.new_volume()
        meta = self.new_image()
        self.upload_unconfirmed(volume, meta)
        self.non_admin_glance_user()
        try:
            self.collect()
        except ks_exc.ClientException:
            pass
        self.assert_clone_serves(meta['id'], sha)

    def upload_never_registered(self, volume, meta):
        """An upload that died after its clone, before Glance took it."""
        with mock.patch.object(location, 'register',
                               return_value=location.LOCATION_API), \
                mock.patch.object(location, 'wait_active',
                                  side_effect=location.ActivationTimeout(
                                      'injected')):
            self.assertRaises(location.ActivationTimeout, self.upload,
                              volume, meta)
        self.assertIn('images/%s' % meta['id'], self.ceph.inventory())

    def test_collector_finds_glance_in_the_catalog(self):
        # Finding 3: Cinder's default is no glance_api_servers; the
        # collector must find Glance as cinder-volume does and remove the
        # clone of an image that is gone.
        volume, sha = self.new_volume()
        meta = self.new_image()
        self.upload_never_registered(volume, meta)
        # The manager deletes the image it created, still queued: Glance
        # knows nothing of the clone.
        self.glance.images.delete(meta['id'])
        base.CONF.set_override('glance_api_servers', None)
        self.addCleanup(base.CONF.clear_override, 'glance_api_servers')
        self.collect()
        self.assertNotIn('images/%s' % meta['id'], self.ceph.inventory())
        self.driver.delete_volume(volume)
        self.assertEqual({}, self.left_behind())

    def test_flattened_clone_of_a_dead_upload_is_found(self):
        # Finding 4: with sync flatten the clone has no parent once its
        # upload snapshot is released; an upload that dies before Glance
        # takes the location must not leave it for ever.
        self.override('clone_upload_flatten', options.FLATTEN_SYNC)
        self.driver = self.make_driver()
        volume, sha = self.new_volume()
        meta = self.new_image()
        self.upload_never_registered(volume, meta)
        # The manager deletes the image it created, still queued.
        self.glance.images.delete(meta['id'])
        self.collect()
        self.assertNotIn('images/%s' % meta['id'], self.ceph.inventory())
        self.driver.delete_volume(volume)
        self.assertEqual({}, self.left_behind())

    def test_startup_sweep_spares_an_upload_that_starts_meanwhile(self):
        # Finding 6: an upload of this host that starts while the
        # start-up sweep runs is not an upload of a dead process.
        volume, sha = self.new_volume()
        meta = self.new_image()
        cloned, go_on = threading.Event(), threading.Event()
        real_register = location.register

        def register(*args, **kwargs):
            cloned.set()
            go_on.wait(60)
            return real_register(*args, **kwargs)

        errors = []

        def run():
            try:
                self.upload(volume, meta)
            except Exception as e:
                errors.append(e)

        with mock.patch.object(location, 'register', side_effect=register):
            thread = threading.Thread(target=run)
            thread.start()
            self.assertTrue(cloned.wait(60))
            try:
                # cinder-volume's first sweep, started before the upload:
                # its view of what is in flight does not have it. The
                # grace is the default: the start-up sweep ignores it for
                # this host's uploads begun before the process started.
                with mock.patch.object(self.driver, '_in_flight', set()):
                    self.collect(grace=3600)
            finally:
                go_on.set()
                thread.join(120)
        self.assertEqual([], errors)
        self.assertEqual('active', self.image(meta['id'])['status'])
        self.assert_clone_serves(meta['id'], sha)

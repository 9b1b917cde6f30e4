# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""upload-to-image on an RBD backend, checked through the public APIs only.

No Nova, no Neutron, no Ceph credentials: the data is written into a Glance
image of known random bytes, carried into a volume (volume from image),
uploaded back (``os-volume_upload_image``) and compared with what Glance
computed (``checksum``, ``os_hash_value``) and with what it serves
(download). That the upload was a clone is read from the image's own tasks:
a clone upload registers its location through Glance's location API, which
runs a ``location_import`` task whose input is the ``rbd://`` URL; the
generic upload writes the data and runs no task.
"""

import hashlib
import io
import json
import os
import re
import time

from tempest.common import waiters
from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc
from tempest import test

CONF = config.CONF
GiB = 1024 ** 3
CHUNK = 4 * 1024 * 1024
RBD_URL = re.compile(r'^rbd://(?P<fsid>[^/]+)/(?P<pool>[^/]+)/'
                     r'(?P<image>[^/]+)/(?P<snap>[^/]+)$')
TASK_DONE = ('success', 'failure')


class ExpectedBytes(object):
    """Random head followed by zeros up to the volume's size."""

    def __init__(self, head, size):
        self.head = head
        self.size = size
        self._digests = {}

    def digests(self, algo):
        """(md5 hex, <algo> hex) of the bytes, computed once per algo."""
        if algo not in self._digests:
            md5 = hashlib.md5(usedforsecurity=False)
            other = hashlib.new(algo)
            for h in (md5, other):
                h.update(self.head)
            zeros = bytes(CHUNK)
            left = self.size - len(self.head)
            while left > 0:
                block = zeros[:min(CHUNK, left)]
                md5.update(block)
                other.update(block)
                left -= len(block)
            self._digests[algo] = (md5.hexdigest(), other.hexdigest())
        return self._digests[algo]


class UploadCloneTestBase(test.BaseTestCase):
    """Set-up and checks shared by the tests below."""

    credentials = ['primary']

    @classmethod
    def skip_checks(cls):
        super(UploadCloneTestBase, cls).skip_checks()
        if not CONF.rbd_upload_clone.enabled:
            raise cls.skipException('[rbd_upload_clone] enabled is False')
        if not CONF.service_available.cinder:
            raise cls.skipException('Cinder is not available')
        if not CONF.service_available.glance:
            raise cls.skipException('Glance is not available')

    @classmethod
    def setup_credentials(cls):
        # No server, no network: these tests need neither Nova nor Neutron.
        cls.set_network_resources()
        super(UploadCloneTestBase, cls).setup_credentials()

    @classmethod
    def setup_clients(cls):
        super(UploadCloneTestBase, cls).setup_clients()
        cls.images_client = cls.os_primary.image_client_v2
        cls.volumes_client = cls.os_primary.volumes_client_latest

    @classmethod
    def resource_setup(cls):
        super(UploadCloneTestBase, cls).resource_setup()
        opts = CONF.rbd_upload_clone
        cls.volume_type = opts.volume_type or CONF.volume.volume_type or None
        cls.store_id = opts.rbd_store_id or cls._default_store()
        head = os.urandom(opts.image_data_size)
        cls.expected = ExpectedBytes(head, CONF.volume.volume_size * GiB)
        cls.source_image = cls._create_source_image(head)

    @classmethod
    def _default_store(cls):
        try:
            stores = cls.images_client.info_stores()['stores']
        except lib_exc.NotFound:
            return None  # Glance without multiple stores
        for store in stores:
            if store.get('default'):
                return store['id']
        return None

    @classmethod
    def _create_source_image(cls, data):
        name = data_utils.rand_name(prefix=CONF.resource_name_prefix,
                                    name=cls.__name__ + '-source')
        image = cls.images_client.create_image(
            name=name, container_format='bare', disk_format='raw',
            visibility='private')
        cls.addClassResourceCleanup(cls._delete_when_free, image['id'])
        cls.images_client.store_image_file(image['id'], io.BytesIO(data))
        waiters.wait_for_image_status(cls.images_client, image['id'],
                                      'active')
        return cls.images_client.show_image(image['id'])

    @classmethod
    def _delete_when_free(cls, image_id):
        """Delete the source image once no hidden volume needs it.

        Every source volume is a copy-on-write clone of the source image. A
        source volume deleted while an image uploaded from it lived is kept
        hidden by the driver and removed by its collector, every
        clone_upload_gc_interval seconds, once that image is gone; until
        then Glance answers 409 to deleting the source image.
        """
        deadline = time.time() + CONF.rbd_upload_clone.collector_timeout
        while True:
            try:
                cls.images_client.delete_image(image_id)
                break
            except lib_exc.NotFound:
                return
            except lib_exc.Conflict:
                if time.time() > deadline:
                    raise
                time.sleep(5)
        cls.images_client.wait_for_resource_deletion(image_id)

    # ---------------------------------------------------------------- steps
    def _name(self, what):
        return data_utils.rand_name(prefix=CONF.resource_name_prefix,
                                    name='%s-%s' % (self.__class__.__name__,
                                                    what))

    def create_volume(self, image_id=None):
        """A volume of [volume] volume_size GiB, from image_id if given."""
        kwargs = {'size': CONF.volume.volume_size, 'name': self._name('vol')}
        if image_id:
            kwargs['imageRef'] = image_id
        if self.volume_type:
            kwargs['volume_type'] = self.volume_type
        volume = self.volumes_client.create_volume(**kwargs)['volume']
        self.addCleanup(test_utils.call_and_ignore_notfound_exc,
                        self.delete_volume, volume['id'])
        waiters.wait_for_volume_resource_status(self.volumes_client,
                                                volume['id'], 'available')
        return volume

    def delete_volume(self, volume_id):
        """Delete and wait until gone; error_deleting fails at once."""
        self.volumes_client.delete_volume(volume_id)
        start = time.time()
        while True:
            try:
                volume = self.volumes_client.show_volume(volume_id)['volume']
            except lib_exc.NotFound:
                return
            if volume['status'] == 'error_deleting':
                raise lib_exc.DeleteErrorException(resource_id=volume_id)
            if time.time() - start > CONF.volume.build_timeout:
                raise lib_exc.TimeoutException(
                    'volume %s not deleted within %s s (status %s)'
                    % (volume_id, CONF.volume.build_timeout,
                       volume['status']))
            time.sleep(CONF.volume.build_interval)

    def delete_image(self, image_id):
        self.images_client.delete_image(image_id)
        self.images_client.wait_for_resource_deletion(image_id)

    def upload(self, volume_id, disk_format='raw'):
        """Upload a volume; return (image, tasks) once Glance is done."""
        body = self.volumes_client.upload_volume(
            volume_id, image_name=self._name('upload'),
            disk_format=disk_format)['os-volume_upload_image']
        image_id = body['image_id']
        self.addCleanup(self.images_client.wait_for_resource_deletion,
                        image_id)
        self.addCleanup(test_utils.call_and_ignore_notfound_exc,
                        self.images_client.delete_image, image_id)
        waiters.wait_for_image_status(self.images_client, image_id,
                                      'active')
        waiters.wait_for_volume_resource_status(self.volumes_client,
                                                volume_id, 'available')
        return self.wait_image_done(image_id)

    def wait_image_done(self, image_id):
        """Wait until every task of the image ended and its hashes are set.

        A location registered through the location API makes the image
        active before Glance has read the data; its ``location_import``
        task then sets ``checksum`` and ``os_hash_value``.
        """
        timeout = CONF.rbd_upload_clone.task_timeout
        start = time.time()
        while True:
            image = self.images_client.show_image(image_id)
            tasks = self.images_client.show_image_tasks(image_id)['tasks']
            failed = [t for t in tasks if t['status'] == 'failure']
            if failed:
                self.fail('Glance task %s (%s) of image %s failed: %s'
                          % (failed[0]['id'], failed[0]['type'], image_id,
                             failed[0].get('message')))
            if (all(t['status'] in TASK_DONE for t in tasks) and
                    image['checksum'] and image['os_hash_value']):
                return image, tasks
            if time.time() - start > timeout:
                raise lib_exc.TimeoutException(
                    'image %s: tasks %s, checksum %s after %s s'
                    % (image_id, [(t['type'], t['status']) for t in tasks],
                       image['checksum'], timeout))
            time.sleep(1)

    # --------------------------------------------------------------- checks
    def assert_bytes(self, image):
        """Glance's size and hashes are those of the known bytes."""
        md5, other = self.expected.digests(image['os_hash_algo'])
        self.assertEqual(self.expected.size, image['size'])
        self.assertEqual(md5, image['checksum'])
        self.assertEqual(other, image['os_hash_value'])

    def assert_download(self, image_id, algo='sha512'):
        """What Glance serves is the known bytes."""
        resp = self.images_client.show_image_file(image_id, chunked=True)
        digest, size = hashlib.new(algo), 0
        try:
            for block in resp.stream(CHUNK):
                digest.update(block)
                size += len(block)
        finally:
            resp.release_conn()
        self.assertEqual(self.expected.size, size)
        self.assertEqual(self.expected.digests(algo)[1], digest.hexdigest())

    def location_task(self, tasks):
        for task in tasks:
            if task['type'] == 'location_import':
                return task
        return None

    def assert_cloned(self, image, tasks):
        """The upload registered rbd://<fsid>/<pool>/<image id>/snap.

        Returns the URL's parts, or None when [rbd_upload_clone]
        expect_clone is False.
        """
        if self.store_id:
            self.assertEqual(self.store_id, image.get('stores'))
        if not CONF.rbd_upload_clone.expect_clone:
            return None
        task = self.location_task(tasks)
        self.assertIsNotNone(
            task, 'image %s has no location_import task: the upload copied '
            'the data instead of cloning (see cinder-volume\'s log line '
            '"Upload of volume ...")' % image['id'])
        self.assertEqual('success', task['status'])
        match = RBD_URL.match(task['input']['loc_url'])
        self.assertIsNotNone(match, task['input']['loc_url'])
        self.assertEqual(image['id'], match.group('image'))
        self.assertEqual('snap', match.group('snap'))
        return match.groupdict()

    def assert_copied(self, tasks):
        """The generic upload writes data: no location was registered."""
        self.assertIsNone(self.location_task(tasks))


class UploadCloneTest(UploadCloneTestBase):
    """Raw uploads clone and keep the bytes, in either deletion order."""

    @decorators.idempotent_id('3f9e6a52-8d0b-4b57-9a55-0f0d1c7e2a11')
    def test_raw_upload_keeps_bytes(self):
        source = self.create_volume(self.source_image['id'])
        image, tasks = self.upload(source['id'])
        self.assertEqual('raw', image['disk_format'])
        self.assertEqual('bare', image['container_format'])
        self.assert_cloned(image, tasks)
        self.assert_bytes(image)
        self.assert_download(image['id'])

    @decorators.idempotent_id('b1c3a2a4-51a4-4a0e-8b87-7d4b0c1f6e02')
    def test_delete_source_volume_then_read_image(self):
        source = self.create_volume(self.source_image['id'])
        image, tasks = self.upload(source['id'])
        self.assert_cloned(image, tasks)
        self.delete_volume(source['id'])
        # The image does not depend on the volume's Cinder record.
        image = self.images_client.show_image(image['id'])
        self.assertEqual('active', image['status'])
        self.assert_bytes(image)
        self.assert_download(image['id'])
        self.delete_image(image['id'])

    @decorators.idempotent_id('5d7f2c0e-9a63-4f3e-b7a4-2c6e8f1d9b03')
    def test_volume_from_upload_then_delete_image(self):
        source = self.create_volume(self.source_image['id'])
        image, tasks = self.upload(source['id'])
        self.assert_cloned(image, tasks)
        copy = self.create_volume(image['id'])
        try:
            self.images_client.delete_image(image['id'])
        except lib_exc.Conflict:
            # Glance's rbd store refuses to delete an image whose snapshot
            # still has clones (Ceph clone format 1): the image must stay
            # whole and delete once the volume made from it is gone.
            kept = self.images_client.show_image(image['id'])
            self.assertEqual('active', kept['status'])
            self.assert_bytes(kept)
        else:
            # Clone format 2: the image goes, its clones live on.
            self.images_client.wait_for_resource_deletion(image['id'])
            kept = None
        # The volume made from the image holds the image's bytes either way.
        again, _ = self.upload(copy['id'])
        self.assert_bytes(again)
        # Then everything goes, each once nothing depends on it any more:
        # no deletion here waits for the driver's collector.
        self.delete_image(again['id'])
        self.delete_volume(copy['id'])
        if kept:
            self.delete_image(kept['id'])
        self.delete_volume(source['id'])

    @decorators.idempotent_id('c4e1b7d9-2f5a-4c8e-a6b3-8e9f0a1b2c04')
    def test_qcow2_upload_copies(self):
        source = self.create_volume(self.source_image['id'])
        image, tasks = self.upload(source['id'], disk_format='qcow2')
        self.assertEqual('qcow2', image['disk_format'])
        self.assert_copied(tasks)
        # Cinder converts the qcow2 image back into a raw volume; its raw
        # upload must be the original bytes.
        copy = self.create_volume(image['id'])
        again, tasks = self.upload(copy['id'])
        self.assert_cloned(again, tasks)
        self.assert_bytes(again)


class UploadCloneAdminTest(UploadCloneTestBase):
    """Where the clone lands, as seen by an admin."""

    credentials = ['primary', 'admin']

    @classmethod
    def skip_checks(cls):
        super(UploadCloneAdminTest, cls).skip_checks()
        if not CONF.rbd_upload_clone.admin_location_checks:
            raise cls.skipException(
                '[rbd_upload_clone] admin_location_checks is False')

    @classmethod
    def setup_clients(cls):
        super(UploadCloneAdminTest, cls).setup_clients()
        cls.admin_images_client = cls.os_admin.image_client_v2

    def admin_get(self, path):
        resp, body = self.admin_images_client.get(path)
        self.admin_images_client.expected_success(200, resp.status)
        return json.loads(body)

    def store_detail(self, store_id):
        for store in self.admin_get('info/stores/detail')['stores']:
            if store['id'] == store_id:
                return store
        self.fail('Glance has no store %r' % store_id)

    @decorators.idempotent_id('0a6d3e8f-7b2c-4d1e-9f5a-3b7c8d9e0f05')
    def test_clone_is_in_rbd_store(self):
        """The image's store is rbd; the location names its pool and fsid."""
        source = self.create_volume(self.source_image['id'])
        image, tasks = self.upload(source['id'])
        store = self.store_detail(image['stores'])
        self.assertEqual('rbd', store['type'])
        url = self.assert_cloned(image, tasks)
        if url:
            self.assertEqual(store['properties']['pool'], url['pool'])
            self.assertEqual(store['properties']['fsid'], url['fsid'])

    @decorators.idempotent_id('e2f4a6b8-c0d2-4e6f-8a1c-3e5f7a9b1d06')
    def test_admin_lists_clone_location(self):
        """GET /v2/images/{id}/locations, where Glance lets admin call it."""
        source = self.create_volume(self.source_image['id'])
        image, tasks = self.upload(source['id'])
        try:
            locations = self.admin_get('images/%s/locations' % image['id'])
        except lib_exc.Forbidden:
            raise self.skipException(
                'Glance lets only the service role list locations '
                '(fetch_image_location policy); the location was checked '
                'through the image\'s location_import task instead')
        store = self.store_detail(image['stores'])
        expected = 'rbd://%s/%s/%s/snap' % (store['properties']['fsid'],
                                            store['properties']['pool'],
                                            image['id'])
        self.assertEqual([expected], [loc['url'] for loc in locations])
        self.assertEqual(image['stores'],
                         locations[0]['metadata'].get('store'))

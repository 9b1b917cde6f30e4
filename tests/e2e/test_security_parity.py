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

"""Security parity through the real CLIs: a clone passes Glance's checks.

Each vector is built with qemu-img, sgdisk or genisoimage and written at
the start of a 1 GiB volume; the volume is uploaded with
``cinder upload-to-image --disk-format raw`` once on volume type ``clone``
(enable_clone_optimization on) and once on ``generic`` (upstream's copy,
where Glance inspects the bytes itself). The outcome must be the same:
the image active with the volume's bytes, or the upload refused and the
image gone. Where the clone type took the clone path, the image is a
clone of the volume.

``virtual_size`` is compared where Glance can set it: Glance's location
API never sets it (it is read-only in the images API, even for admins),
so a clone's is empty; for raw content Glance's ``size`` carries the same
number.

The quota table (:class:`QuotaParityTestCase`) turns Glance's Keystone
unified limits on for its own tests (``tools/cloud up --image-quota``) and
off after them.
"""

import os
import shutil
import subprocess
import tempfile

import fixtures
import glanceclient.exc
from keystoneauth1 import identity
from keystoneauth1 import session as ks_session
from keystoneclient.v3 import client as ks_client

from tests.e2e import base
from tests.functional import base as fbase

GiB = base.GiB


def upload_settled(test, vol_id, image_id):
    """Wait for an upload to end; the image, or None once it is gone."""
    test.wait_volume(vol_id, 'available')

    def settled():
        try:
            image = test.glance.images.get(image_id)
        except glanceclient.exc.HTTPNotFound:
            return True, None
        return image['status'] not in ('queued', 'saving', 'importing'), image
    return base.wait_for('image %s settled' % image_id, settled, 300)


def delete_after_upload(test, vol_id, volume_type):
    """Delete a volume after its upload; True if it needed a restart.

    When Glance refuses an upload's data, upstream's generic copy keeps
    the volume's RBD image open in cinder-volume (its frames hold it until
    a garbage collection), and the volume cannot be deleted (VolumeIsBusy:
    Cinder puts it back to 'available') until cinder-volume restarts. The
    driver releases it on backends with enable_clone_optimization on: only
    the generic type may need this.
    """
    base.run('openstack', 'volume', 'delete', vol_id)

    def deleted():
        # cinder-api has set 'deleting'; 'available' again is a failed
        # delete.
        try:
            current = test.cinder.volumes.get(vol_id).status
        except Exception:
            return True, True
        if current in ('error_deleting', 'available'):
            return True, False
        return False, current
    if base.wait_for('volume %s deleted' % vol_id, deleted, 120):
        return False
    test.assertEqual('generic', volume_type,
                     'volume %s could not be deleted' % vol_id)
    fbase.cloud('restart', 'cinder-volume')
    test.delete_volume(vol_id)
    return True


def build_vectors(tmp):
    """{name: path}: the content each upload puts at its volume's start."""
    def qemu(name, *args):
        path = os.path.join(tmp, name)
        subprocess.run(['qemu-img', 'create', '-q'] + list(args) +
                       [path, '64M'], check=True)
        return path

    vectors = {}
    raw = os.path.join(tmp, 'raw')
    with open(raw, 'wb') as f:
        f.write(os.urandom(4 * base.MiB))
    vectors['raw data'] = raw
    gpt = os.path.join(tmp, 'gpt')
    with open(gpt, 'wb') as f:
        f.truncate(8 * base.MiB)
    subprocess.run(['sgdisk', '-o', '-n', '1:2048:+2M', gpt], check=True,
                   capture_output=True)
    vectors['raw with a valid GPT'] = gpt
    vectors['qcow2 with a backing file'] = qemu(
        'backing', '-f', 'qcow2', '-b', '/etc/hostname', '-F', 'raw')
    vectors['qcow2 with an external data file'] = qemu(
        'datafile', '-f', 'qcow2', '-o',
        'data_file=%s' % os.path.join(tmp, 'data'))
    vectors['VMDK with a flat extent'] = qemu(
        'flat.vmdk', '-f', 'vmdk', '-o', 'subformat=monolithicFlat')
    unsafe = os.path.join(tmp, 'gpt-unsafe')
    shutil.copy(gpt, unsafe)
    with open(unsafe, 'r+b') as f:
        # A second MBR partition beside the protective one.
        f.seek(462)
        f.write(bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) +
                (1).to_bytes(4, 'little') + (100).to_bytes(4, 'little'))
    vectors['GPT with an unsafe partition table'] = unsafe
    src = os.path.join(tmp, 'iso-src')
    os.mkdir(src)
    with open(os.path.join(src, 'readme'), 'w') as f:
        f.write('parity\n')
    iso = os.path.join(tmp, 'iso')
    subprocess.run(['genisoimage', '-quiet', '-o', iso, src], check=True,
                   capture_output=True)
    vectors['ISO'] = iso
    return vectors


class SecurityParityTestCase(base.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super(SecurityParityTestCase, cls).setUpClass()
        for tool in ('qemu-img', 'sgdisk', 'genisoimage'):
            if not shutil.which(tool):
                raise AssertionError('%s is missing: tools/cloud install '
                                     'puts it there' % tool)
        cls.tmp = tempfile.mkdtemp(prefix='parity-')
        cls.vectors = build_vectors(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super(SecurityParityTestCase, cls).tearDownClass()

    def write_vector(self, vol_id, path):
        with open(path, 'rb') as f:
            data = f.read()
        with self.ceph.rbd.Image(self.ceph.ioctx['volumes'],
                                 'volume-%s' % vol_id) as img:
            img.write(data, 0)

    def outcome(self, volume_type, vector):
        """(status, sha256 of the image's bytes, virtual_size, cloned)."""
        vol = self.create_volume('parity-%s' % volume_type,
                                 volume_type=volume_type)
        self.write_vector(vol['id'], self.vectors[vector])
        vol_sha = self.ceph.sha256('volumes', 'volume-%s' % vol['id'])
        image_id = self.upload_async(vol['id'], 'parity-%s' % volume_type)
        image = upload_settled(self, vol['id'], image_id)
        if image is None or image['status'] != 'active':
            result = ('refused', None, None, False)
        else:
            sha = self.download_sha256(image_id)
            self.assertEqual(vol_sha, sha)
            parent = self.ceph.parent('images', image_id)
            result = ('active', sha == vol_sha, image.get('virtual_size'),
                      parent is not None)
            self.delete_image(image_id)
        delete_after_upload(self, vol['id'], volume_type)
        return result

    def check_vector(self, vector, expected):
        clone = self.outcome('clone', vector)
        generic = self.outcome('generic', vector)
        self.addDetail('outcomes', base.testtools.content.text_content(
            '%s: clone %s, generic %s' % (vector, clone, generic)))
        self.assertEqual(expected, generic[0], 'Glance itself')
        self.assertEqual(generic[:2], clone[:2], vector)
        self.assertFalse(generic[3], 'the generic copy is no clone')
        if clone[0] == 'active':
            # Content Glance accepts is cloned.
            self.assertTrue(clone[3], '%s was not cloned' % vector)
            self.assertIn(clone[2], (None, generic[2]))
            self.assertEqual(GiB, generic[2])

    def test_raw_data(self):
        self.check_vector('raw data', 'active')

    def test_raw_with_valid_gpt(self):
        self.check_vector('raw with a valid GPT', 'active')

    def test_qcow2_with_backing_file(self):
        self.check_vector('qcow2 with a backing file', 'refused')

    def test_qcow2_with_data_file(self):
        self.check_vector('qcow2 with an external data file', 'refused')

    def test_vmdk_with_flat_extent(self):
        self.check_vector('VMDK with a flat extent', 'active')

    def test_gpt_with_unsafe_partition_table(self):
        self.check_vector('GPT with an unsafe partition table', 'refused')

    def test_iso(self):
        self.check_vector('ISO', 'active')


class QuotaParityTestCase(base.E2ETestCase):
    """Glance on Keystone unified limits (tools/cloud up --image-quota).

    The class turns the quota on for its tests (glance-api restarts once)
    and off again after them. The demo project's image_size_total is set
    per test through Keystone's limits API.
    """

    LIMIT_MIB = 1536

    @classmethod
    def setUpClass(cls):
        super(QuotaParityTestCase, cls).setUpClass()
        os.environ['CLOUD_IMAGE_SIZE_TOTAL_MIB'] = str(cls.LIMIT_MIB)
        try:
            fbase.cloud('up', '--image-quota')
        finally:
            del os.environ['CLOUD_IMAGE_SIZE_TOTAL_MIB']

    @classmethod
    def tearDownClass(cls):
        fbase.cloud('up', '--no-image-quota')
        super(QuotaParityTestCase, cls).tearDownClass()

    def setUp(self):
        super(QuotaParityTestCase, self).setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.set_limit(self.LIMIT_MIB)
        self.addCleanup(self.set_limit, self.LIMIT_MIB)

    def set_limit(self, mib):
        """The demo project's image_size_total, as an admin of Keystone."""
        env = base.cloudlib.read_openrc('admin-openrc')
        sess = ks_session.Session(auth=identity.Password(
            auth_url=env['OS_AUTH_URL'], username=env['OS_USERNAME'],
            password=env['OS_PASSWORD'], system_scope='all',
            user_domain_name=env.get('OS_USER_DOMAIN_NAME', 'Default')))
        keystone = ks_client.Client(session=sess)
        demo = keystone.projects.find(name='demo')
        service = keystone.services.find(type='image')
        limit = [lim for lim in keystone.limits.list(
            service=service, project=demo,
            resource_name='image_size_total')][0]
        keystone.limits.update(limit, resource_limit=mib)
        base.wait_for('Glance sees image_size_total %d' % mib,
                      lambda: (self.usage()['limit'] == mib, None), 30)

    def usage(self):
        return self.glance.info.get_usage()['image_size_total']

    def fill(self, mib):
        """An image of ``mib`` MiB of the demo project's quota."""
        path = os.path.join(self.tmp, 'filler')
        with open(path, 'wb') as f:
            f.truncate(mib * base.MiB)
        image = base.openstack('image', 'create', '--disk-format', 'raw',
                               '--container-format', 'bare', '--file',
                               path, 'quota-filler')
        self.addCleanup(self.delete_image_quietly, image['id'])
        return image['id']

    def outcome(self, volume_type):
        """(status, cloned) of a 1 GiB volume's upload."""
        vol = self.create_volume('quota-%s' % volume_type,
                                 volume_type=volume_type)
        image_id = self.upload_async(vol['id'], 'quota-%s' % volume_type)
        image = upload_settled(self, vol['id'], image_id)
        status = image['status'] if image else 'refused'
        cloned = status == 'active' and self.ceph.parent(
            'images', image_id) is not None
        if image:
            self.delete_image(image_id)
        delete_after_upload(self, vol['id'], volume_type)
        return status, cloned

    def both(self):
        return {t: self.outcome(t) for t in ('clone', 'generic')}

    def test_inside_the_limit(self):
        self.assertLessEqual(self.usage()['usage'] + 1024, self.LIMIT_MIB)
        self.assertEqual({'clone': ('active', True),
                          'generic': ('active', False)}, self.both())

    def test_past_the_limit_after_the_upload(self):
        # Within the limit now, past it after 1 GiB more: the clone path
        # does not clone; Glance lets the generic copy through (it is
        # not yet over), on both types.
        self.fill(700)
        used = self.usage()['usage']
        self.assertGreater(used + 1024, self.LIMIT_MIB)
        self.assertLessEqual(used, self.LIMIT_MIB)
        self.assertEqual({'clone': ('active', False),
                          'generic': ('active', False)}, self.both())

    def test_already_over_the_limit(self):
        self.fill(700)
        self.set_limit(500)
        self.assertEqual({'clone': ('refused', False),
                          'generic': ('refused', False)}, self.both())

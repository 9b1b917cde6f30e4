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

"""End-to-end: the real `openstack` and `cinder` CLIs against the cloud.

Every action goes through the CLIs, cinder-api, the scheduler and
cinder-volume (the driver under test runs there). Only waiting and checks
use libraries: status polling with python-glanceclient/cinderclient (a CLI
process per poll costs seconds), Ceph with the admin keyring, and Glance's
location list with Cinder's service user (it needs the service role).
"""

import concurrent.futures
import os
import sys
import time

import fixtures
from glanceclient import client as glance_client
import rbd
import testtools

from cinder_rbd_upload_clone import compat
from tests.functional import base as fbase

sys.path.insert(0, os.path.join(fbase.REPO, 'tools'))
import cloudlib  # noqa: E402

# Whether Cinder makes a volume from an rbd image as a clone of it. Cinder
# 27+ (2025.2) reads the image's locations through Glance's location list
# (with its [glance] service credentials); Cinder 26 (2025.1) only from
# the image's direct_url, which Glance shows only with
# show_image_direct_url (off here, as OSSN-0065 advises): it copies.
CINDER_CLONES_IMAGES = compat.GLANCE_PRIVILEGED_CALLS
NO_IMAGE_CLONES = ('Cinder 26 (2025.1) copies images into volumes here: it '
                   'finds their rbd location only through direct_url, which '
                   'Glance hides (show_image_direct_url off)')

CLIError = cloudlib.CLIError
MiB, GiB = cloudlib.MiB, cloudlib.GiB
run = cloudlib.run
openstack = cloudlib.openstack
wait_for = cloudlib.wait_for


class E2ETestCase(testtools.TestCase):

    def setUp(self):
        super(E2ETestCase, self).setUp()
        self.ceph = fbase.Ceph()
        self.addCleanup(self.ceph.close)
        self.glance, self.cinder = cloudlib.clients()

    # Volumes.

    def create_volume(self, name, size=1, volume_type='clone', image=None):
        args = ['volume', 'create', '--size', str(size), '--type',
                volume_type]
        if image:
            args += ['--image', image]
        vol = openstack(*args, name)
        self.addCleanup(self.delete_volume_quietly, vol['id'])
        self.wait_volume(vol['id'], 'available')
        return vol

    def wait_volume(self, vol_id, status, timeout=300):
        def check():
            current = self.cinder.volumes.get(vol_id).status
            if current in ('error', 'error_deleting'):
                raise AssertionError('volume %s is %s' % (vol_id, current))
            return current == status, current
        return wait_for('volume %s %s' % (vol_id, status), check, timeout)

    def delete_volume(self, vol_id, timeout=180):
        run('openstack', 'volume', 'delete', vol_id)

        def check():
            try:
                current = self.cinder.volumes.get(vol_id).status
            except Exception:
                return True, 'gone'
            if current == 'error_deleting':
                raise AssertionError('volume %s error_deleting' % vol_id)
            return False, current
        wait_for('volume %s deleted' % vol_id, check, timeout)

    def delete_volume_quietly(self, vol_id):
        try:
            self.delete_volume(vol_id)
        except Exception:
            pass

    def write_volume(self, vol_id, size=64 * MiB):
        """Known data at the start of the volume; sha256 of the whole."""
        name = 'volume-%s' % vol_id
        self.ceph.fill('volumes', name, size, vol_id)
        return self.ceph.sha256('volumes', name)

    # Images.

    def upload(self, vol_id, name, disk_format='raw', timeout=600):
        image_id = None
        out = run('cinder', 'upload-to-image', '--disk-format', disk_format,
                  '--container-format', 'bare', vol_id, name)
        for line in out.splitlines():
            cells = [c.strip() for c in line.split('|')]
            if len(cells) > 2 and cells[1] == 'image_id':
                image_id = cells[2]
        self.assertIsNotNone(image_id, out)
        self.addCleanup(self.delete_image_quietly, image_id)
        self.wait_image(image_id, 'active', timeout)
        self.wait_volume(vol_id, 'available')
        return self.glance.images.get(image_id)

    def wait_image(self, image_id, status, timeout=600):
        def check():
            current = self.glance.images.get(image_id)['status']
            if current in ('killed', 'deleted'):
                raise AssertionError('image %s is %s' % (image_id, current))
            return current == status, current
        return wait_for('image %s %s' % (image_id, status), check, timeout)

    def upload_async(self, vol_id, name):
        """Start an upload; return the image id (the driver runs later)."""
        out = run('cinder', 'upload-to-image', '--disk-format', 'raw',
                  '--container-format', 'bare', vol_id, name)
        for line in out.splitlines():
            cells = [c.strip() for c in line.split('|')]
            if len(cells) > 2 and cells[1] == 'image_id':
                self.addCleanup(self.delete_image_quietly, cells[2])
                return cells[2]
        raise AssertionError(out)

    def freeze_upload_at(self, vol_id, name, state, timeout=120):
        """Upload, and freeze cinder-volume once its journal says ``state``.

        The CLI runs in a thread while this polls the images pool and the
        journal every few milliseconds: the window (a pending clone not yet
        registered, a flatten under way) does not depend on when the CLI
        returns. Returns (image id, the journal record seen, its parent).
        """
        before = set(rbd.RBD().list(self.ceph.ioctx['images']))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = pool.submit(self.upload_async, vol_id, name)
            deadline = time.monotonic() + timeout
            seen = None
            while seen is None and time.monotonic() < deadline:
                journal = self.ceph.journal()
                for image_id in set(rbd.RBD().list(
                        self.ceph.ioctx['images'])) - before:
                    record = journal.get(image_id)
                    if record and record['state'] == state:
                        freeze_cinder_volume()
                        seen = image_id, record, self.ceph.parent(
                            'images', image_id)
                        break
                else:
                    time.sleep(0.005)
            image_id = started.result()
        self.assertIsNotNone(seen, 'never saw an upload of volume %s in '
                             'journal state %r (new images: %s)' % (
                                 vol_id, state, set(rbd.RBD().list(
                                     self.ceph.ioctx['images'])) - before))
        self.assertEqual(image_id, seen[0])
        return seen

    def reset_if_uploading(self, vol_id):
        """Reset a volume a crash left 'uploading', as an operator does.

        Cinder does not clean up an upload cut short by a crash.
        """
        if self.cinder.volumes.get(vol_id).status == 'uploading':
            run('cinder', 'reset-state', '--state', 'available', vol_id,
                openrc='admin-openrc')
        self.wait_volume(vol_id, 'available')

    def volume_sha512(self, vol_id):
        """What Glance's os_hash_value must be for an image of the volume."""
        return self.ceph.digest('volumes', 'volume-%s' % vol_id, 'sha512')

    def wait_hash(self, image_id, timeout=180):
        def check():
            image = self.glance.images.get(image_id)
            return cloudlib.hashed(image), image
        return wait_for('os_hash_value of %s' % image_id, check, timeout)

    def download_sha256(self, image_id):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'image')
        return cloudlib.download_sha256(image_id, path)

    def delete_image(self, image_id):
        run('openstack', 'image', 'delete', image_id)

    def delete_image_quietly(self, image_id):
        try:
            self.delete_image(image_id)
        except Exception:
            pass

    def image_locations(self, image_id):
        """Glance's location list, read with the service role."""
        glance = glance_client.Client('2', session=fbase.service_session())
        return [loc['url'] for loc in
                glance.images.get_image_locations(image_id)]

    def fsid(self):
        return self.ceph.cluster.get_fsid()

    # Leaks.

    def assert_no_leaks(self, timeout=120):
        """tools/leak-check finds nothing (waiting for the collector)."""
        import subprocess
        tool = os.path.join(fbase.REPO, 'tools', 'leak-check')

        def check():
            proc = subprocess.run([tool], capture_output=True, text=True,
                                  env=cloudlib.cli_env())
            return proc.returncode == 0, proc.stdout + proc.stderr
        wait_for('no leaks', check, timeout, interval=3)


cloud = fbase.cloud


def freeze_cinder_volume():
    """Stop every cinder-volume process where it stands (SIGSTOP)."""
    cloud('kill', '--signal', 'STOP', 'cinder-volume')


def crash_cinder_volume():
    """SIGKILL cinder-volume (as a host crash would); wait until gone."""
    cloud('kill', 'cinder-volume')


def restart_cinder_volume():
    """Start what is down again (tools/cloud up: only cinder-volume)."""
    cloud('up')

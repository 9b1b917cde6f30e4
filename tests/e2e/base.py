"""End-to-end: the real `openstack` and `cinder` CLIs against the cloud.

Every action goes through cinder-api, the scheduler and cinder-volume (the
driver under test runs there); only checks look at Ceph directly (admin
keyring) and at Glance's location list (Cinder's service user, which holds
the service role the location list needs).
"""

import hashlib
import json
import os
import subprocess
import time

import fixtures
from glanceclient import client as glance_client
import rbd
import testtools

from tests.functional import base as fbase

CLOUD = fbase.CLOUD
VENV_BIN = os.path.join(fbase.REPO, '.venv', 'bin')
MiB = fbase.MiB
GiB = 1024 * MiB


class CLIError(Exception):
    pass


def cli_env(openrc='openrc'):
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    env.update(fbase.read_openrc(openrc))
    env['PATH'] = VENV_BIN + os.pathsep + env.get('PATH', '')
    return env


def run(*args, openrc='openrc', timeout=120):
    proc = subprocess.run(list(args), env=cli_env(openrc), timeout=timeout,
                          capture_output=True, text=True)
    if proc.returncode:
        raise CLIError('%s failed (%d): %s' % (' '.join(args),
                                               proc.returncode,
                                               proc.stderr.strip()[-2000:]))
    return proc.stdout


def openstack(*args, **kwargs):
    out = run('openstack', *args, '-f', 'json', **kwargs)
    return json.loads(out) if out.strip() else None


def wait_for(what, check, timeout=180, interval=1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        done, last = check()
        if done:
            return last
        time.sleep(interval)
    raise AssertionError('timed out after %ss waiting for %s (last: %s)' %
                         (timeout, what, last))


class E2ETestCase(testtools.TestCase):

    def setUp(self):
        super(E2ETestCase, self).setUp()
        self.ceph = fbase.Ceph()
        self.addCleanup(self.ceph.close)

    # Volumes.

    def create_volume(self, name, size=1, volume_type='clone', image=None):
        args = ['volume', 'create', '--size', str(size), '--type',
                volume_type]
        if image:
            args += ['--image', image]
        vol = openstack(*args, name)
        self.addCleanup(self.delete_volume_quietly, vol['id'])
        return self.wait_volume(vol['id'], 'available')

    def wait_volume(self, vol_id, status, timeout=180):
        def check():
            vol = openstack('volume', 'show', vol_id)
            if vol['status'] == 'error':
                raise AssertionError('volume %s is in error' % vol_id)
            return vol['status'] == status, vol
        return wait_for('volume %s %s' % (vol_id, status), check, timeout)

    def delete_volume(self, vol_id, timeout=120):
        run('openstack', 'volume', 'delete', vol_id)

        def check():
            try:
                vol = openstack('volume', 'show', vol_id)
            except CLIError as e:
                return 'No volume with' in str(e) or 'could not be found' \
                    in str(e), str(e)
            if vol['status'] == 'error_deleting':
                raise AssertionError('volume %s error_deleting' % vol_id)
            return False, vol['status']
        wait_for('volume %s deleted' % vol_id, check, timeout)

    def delete_volume_quietly(self, vol_id):
        try:
            self.delete_volume(vol_id)
        except Exception:
            pass

    def write_volume(self, vol_id, size=64 * MiB):
        """Known data at the start of the volume; sha256 of the whole."""
        name = 'volume-%s' % vol_id
        ioctx = self.ceph.ioctx['volumes']
        block = hashlib.sha256(vol_id.encode()).digest() * (MiB // 32)
        with rbd.Image(ioctx, name) as img:
            for offset in range(0, size, MiB):
                img.write(block[:-8] + offset.to_bytes(8, 'big'), offset)
        return self.ceph.sha256('volumes', name)

    # Images.

    def upload(self, vol_id, name, disk_format='raw',
               container_format='bare', timeout=300):
        out = run('cinder', 'upload-to-image', '--disk-format', disk_format,
                  '--container-format', container_format, vol_id, name)
        image_id = None
        for line in out.splitlines():
            cells = [c.strip() for c in line.split('|')]
            if len(cells) > 2 and cells[1] == 'image_id':
                image_id = cells[2]
        self.assertIsNotNone(image_id, out)
        self.addCleanup(self.delete_image_quietly, image_id)
        image = self.wait_image(image_id, 'active', timeout)
        self.wait_volume(vol_id, 'available')
        return image

    def wait_image(self, image_id, status, timeout=300):
        def check():
            image = openstack('image', 'show', image_id)
            if image['status'] in ('killed', 'deleted'):
                raise AssertionError('image %s is %s' % (image_id,
                                                         image['status']))
            return image['status'] == status, image['status']
        wait_for('image %s %s' % (image_id, status), check, timeout)
        return openstack('image', 'show', image_id)

    def wait_hash(self, image_id, timeout=120):
        def check():
            image = openstack('image', 'show', image_id)
            return bool(image.get('os_hash_value')), image
        return wait_for('os_hash_value of %s' % image_id, check, timeout)

    def download_sha256(self, image_id):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'image')
        run('openstack', 'image', 'save', '--file', path, image_id,
            timeout=600)
        digest = hashlib.sha256()
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(4 * MiB), b''):
                digest.update(chunk)
        return digest.hexdigest()

    def delete_image(self, image_id):
        run('openstack', 'image', 'delete', image_id)

    def delete_image_quietly(self, image_id):
        try:
            self.delete_image(image_id)
        except Exception:
            pass

    def image_locations(self, image_id):
        """Glance's location list, read with the service role."""
        glance = glance_client.Client('2',
                                      session=fbase.service_session())
        return [loc['url'] for loc in
                glance.images.get_image_locations(image_id)]

    def fsid(self):
        return self.ceph.cluster.get_fsid()

    # Leaks.

    def assert_no_leaks(self, timeout=90):
        """tools/leak-check finds nothing (waiting for the collector)."""
        tool = os.path.join(fbase.REPO, 'tools', 'leak-check')

        def check():
            proc = subprocess.run([tool], capture_output=True, text=True,
                                  env=cli_env())
            return proc.returncode == 0, proc.stdout + proc.stderr
        wait_for('no leaks', check, timeout, interval=3)

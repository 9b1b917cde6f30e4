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

"""RBD operations of a clone upload, built on the parent driver's helpers.

Layout, exactly as Glance's rbd store makes its own images::

    <volumes pool>/volume-<id>@upload-<image id>.clone_snap   (protected)
        `-- <images pool>/<image id>                         (COW clone)
                `-- @snap                                     (protected)

The volume snapshot's name carries the image id, says what it is for, and
ends in ``.clone_snap`` so that the parent driver's delete keeps a volume
with live image children as a hidden ``<name>.deleted`` RBD image, as it
does for volume clones. :class:`UploadClone` records how to undo each step
it made and :meth:`UploadClone.rollback` undoes them in reverse order.
"""

import contextlib
import json
import math
import time
import urllib.parse

from oslo_log import log as logging
from oslo_utils import encodeutils
from oslo_utils import units

from cinder.volume.drivers import rbd as rbd_driver

from cinder_rbd_upload_clone import inspection

LOG = logging.getLogger(__name__)

GLANCE_SNAP = 'snap'
UPLOAD_SNAP_PREFIX = 'upload-'
UPLOAD_SNAP_SUFFIX = '.clone_snap'
# A flatten writes the clone's share of its parents' data into the pool:
# it goes ahead only with this much more room than that (Ceph's max_avail
# already keeps the cluster below its full ratio).
FLATTEN_HEADROOM = 0.25


def upload_snap_name(image_id):
    return '%s%s%s' % (UPLOAD_SNAP_PREFIX, image_id, UPLOAD_SNAP_SUFFIX)


def image_id_of_snap(snap_name):
    """The image id an upload snapshot was made for, or None."""
    if (snap_name.startswith(UPLOAD_SNAP_PREFIX) and
            snap_name.endswith(UPLOAD_SNAP_SUFFIX)):
        return snap_name[len(UPLOAD_SNAP_PREFIX):-len(UPLOAD_SNAP_SUFFIX)]
    return None


def location_url(fsid, pool, image_id, snap=GLANCE_SNAP):
    """The location Glance's rbd store gives an image it made itself."""
    return 'rbd://%s/%s/%s/%s' % tuple(urllib.parse.quote(p, '')
                                       for p in (fsid, pool, image_id, snap))


class NoRoom(Exception):
    """The pool cannot take a flatten the upload needs."""


class CloneStepError(Exception):
    """A step of the clone path failed; ``step`` names it."""

    def __init__(self, step, error):
        self.step = step
        self.error = error
        super(CloneStepError, self).__init__(
            "step '%s' failed: %s: %s" % (step, type(error).__name__, error))


@contextlib.contextmanager
def pool_ioctx(client, pool):
    """An ioctx on ``pool`` over an open :class:`RADOSClient`'s cluster."""
    ioctx = client.cluster.open_ioctx(pool)
    try:
        yield ioctx
    finally:
        ioctx.close()


def pool_free_bytes(client, pool):
    """Bytes that may still be written to ``pool``.

    As ``RBDDriver._get_pool_stats`` computes it for the volumes pool:
    the pool's ``max_avail``, or less when a quota is nearer.
    """
    ret, out, _err = client.cluster.mon_command(
        '{"prefix":"df", "format":"json"}', b'')
    if ret:
        raise IOError('ceph df failed (%d)' % ret)
    stats = [p for p in json.loads(encodeutils.safe_decode(out))['pools']
             if p['name'] == pool][0]['stats']
    ret, out, _err = client.cluster.mon_command(
        json.dumps({'prefix': 'osd pool get-quota', 'pool': pool,
                    'format': 'json'}), b'')
    if ret:
        raise IOError('ceph osd pool get-quota %s failed (%d)' % (pool, ret))
    quota = json.loads(encodeutils.safe_decode(out))['quota_max_bytes']
    free = stats['max_avail']
    if quota:
        used = stats.get('stored', stats.get('bytes_used', 0))
        free = max(min(quota - used, free), 0)
    return free


def allocated_bytes(image):
    """Bytes of data an open image shows, its parents' included."""
    total = [0]

    def count(_offset, length, exists):
        if exists:
            total[0] += length
        return 0

    image.diff_iterate(0, image.size(), None, count, include_parent=True,
                       whole_object=True)
    return total[0]


def flatten_room(client, pool, image):
    """(ok, reason): may the open clone ``image`` be flattened in ``pool``?"""
    try:
        need = allocated_bytes(image)
        free = pool_free_bytes(client, pool)
    except Exception as e:
        return False, 'cannot tell whether pool %s has room to flatten: ' \
            '%s: %s' % (pool, type(e).__name__, e)
    wanted = int(need * (1 + FLATTEN_HEADROOM))
    if free < wanted:
        return False, ('pool %s has %d MiB free, a flatten writes up to %d '
                       'MiB (with %d%% headroom)' % (
                           pool, free // units.Mi, wanted // units.Mi,
                           FLATTEN_HEADROOM * 100))
    return True, 'pool %s has room' % pool


def has_deep_flatten(driver, features):
    """Whether a flatten also detaches the image's snapshots.

    :param features: an open image, or its feature bits.
    """
    if not isinstance(features, int):
        features = features.features()
    return bool(features & driver.rbd.RBD_FEATURE_DEEP_FLATTEN)


def clone_depth(driver, client, image):
    """Number of RBD ancestors of the open ``image``, whatever made them."""
    try:
        pool, name, _snap = image.parent_info()
    except driver.rbd.ImageNotFound:
        return 0
    with pool_ioctx(client, pool) as ioctx:
        with rbd_driver.RBDVolumeProxy(driver, name, read_only=True,
                                       client=client.cluster,
                                       ioctx=ioctx) as parent:
            return 1 + clone_depth(driver, client, parent)


class UploadClone(object):
    """The RBD side of one clone upload, and how to undo it.

    The volume's image, the destination pool and the clone's image are
    opened once each, when first needed, and stay open until :meth:`close`
    (a ``with`` block closes them too): every open costs round trips to the
    OSDs, and so does taking an image's exclusive lock for a write.

    :param driver: the RBD driver (for its connections and ``rbd`` module).
    :param client: an open :class:`RADOSClient` on the volumes pool.
    :param volume_name: the RBD image of the volume.
    :param dest_pool: the Glance store's pool.
    :param image_id: the Glance image id (the clone's name).
    :param journal: the :class:`journal.Journal` holding the upload's
        record, dropped by the caller once the upload is settled.
    """

    def __init__(self, driver, client, volume_name, dest_pool, image_id,
                 journal=None, timings=None):
        self.driver = driver
        self.journal = journal
        # (step, seconds) of each step run, in order
        self.timings = [] if timings is None else timings
        self.client = client
        self.volume_name = volume_name
        self.dest_pool = dest_pool
        self.image_id = image_id
        self.snap_name = upload_snap_name(image_id)
        self._undo = []
        self.features = None    # the clone's, once made
        self._volume = None
        self._dest = None
        self._image = None

    def __enter__(self):
        return self

    def __exit__(self, type_, value, traceback):
        self.close()

    def _proxy(self, name, ioctx):
        return rbd_driver.RBDVolumeProxy(self.driver, name,
                                         client=self.client.cluster,
                                         ioctx=ioctx)

    @property
    def volume(self):
        """The volume's RBD image, opened on first use."""
        if self._volume is None:
            self._volume = self._proxy(self.volume_name, self.client.ioctx)
        return self._volume

    @property
    def dest(self):
        """An ioctx on the destination pool, opened on first use."""
        if self._dest is None:
            self._dest = self.client.cluster.open_ioctx(self.dest_pool)
        return self._dest

    @property
    def image(self):
        """The clone's RBD image, opened on first use."""
        if self._image is None:
            self._image = self._proxy(self.image_id, self.dest)
        return self._image

    def _close_image(self):
        image, self._image = self._image, None
        if image is not None:
            image.close()

    def close(self):
        """Close the images and the pool this upload opened."""
        handles = (('clone', self._image), ('volume', self._volume),
                   ('pool %s' % self.dest_pool, self._dest))
        self._image = self._volume = self._dest = None
        for what, handle in handles:
            if handle is None:
                continue
            try:
                handle.close()
            except Exception as e:
                LOG.warning('Clone upload of %(vol)s to image %(img)s: '
                            'could not close the %(what)s: %(err)s',
                            {'vol': self.volume_name, 'img': self.image_id,
                             'what': what, 'err': e})

    def _run(self, step, func, *args):
        start = time.monotonic()
        try:
            return func(*args)
        except Exception as e:
            raise CloneStepError(step, e)
        finally:
            self.timings.append((step, time.monotonic() - start))

    def depth(self):
        """Number of RBD ancestors of the volume."""
        return clone_depth(self.driver, self.client, self.volume)

    # Each step is a method of its own: one thing to make, one to undo.

    def _create_snapshot(self):
        self.volume.create_snap(self.snap_name)
        self._undo.append(('remove upload snapshot', self._remove_snapshot))

    def _protect_snapshot(self):
        self.volume.protect_snap(self.snap_name)
        self._undo.append(('unprotect upload snapshot',
                           self._unprotect_snapshot))

    def _clone(self, features, order):
        self.features = features
        self.driver.RBDProxy().clone(self.client.ioctx, self.volume_name,
                                     self.snap_name, self.dest, self.image_id,
                                     features=features, order=order)
        self._undo.append(('remove clone', self._remove_clone))

    def _flatten(self):
        # Bounded with every other flatten of the backend, as the parent
        # driver bounds its own (rbd_concurrent_flatten_operations).
        with self.driver._semaphore:
            self.image.flatten()

    def _create_image_snapshot(self):
        self.image.create_snap(GLANCE_SNAP)
        self._undo.append(('remove clone snapshot',
                           self._remove_image_snapshot))

    def _protect_image_snapshot(self):
        self.image.protect_snap(GLANCE_SNAP)
        self._undo.append(('unprotect clone snapshot',
                           self._unprotect_image_snapshot))

    # Undo actions.

    def _remove_snapshot(self):
        self.volume.remove_snap(self.snap_name)

    def _unprotect_snapshot(self):
        self.volume.unprotect_snap(self.snap_name)

    def _remove_clone(self):
        # librbd removes no image that is open for writing.
        self._close_image()
        self.driver.RBDProxy().remove(self.dest, self.image_id)

    def _remove_image_snapshot(self):
        self.image.remove_snap(GLANCE_SNAP)

    def _unprotect_image_snapshot(self):
        self.image.unprotect_snap(GLANCE_SNAP)

    def _clone_geometry(self):
        """Features and object order for the clone, as Glance would use."""
        # RBDDriver._get_stripe_unit, without opening the volume again.
        stripe_unit = max(
            self.volume.stripe_unit(),
            self.driver.configuration.rbd_store_chunk_size * units.Mi)
        return self.client.features, int(math.log(stripe_unit, 2))

    def _inspect(self, disk_format, container_format, gpt_nonfatal):
        # Read the snapshot through the volume's open image: no open more.
        self.volume.set_snap(self.snap_name)
        try:
            return inspection.check(self.volume.read, self.volume.size(),
                                    disk_format, container_format,
                                    gpt_nonfatal)
        finally:
            self.volume.set_snap(None)

    def snapshot(self):
        """Take and protect the upload snapshot; raise CloneStepError."""
        self._run('snapshot volume', self._create_snapshot)
        self._run('protect volume snapshot', self._protect_snapshot)

    def inspect(self, disk_format, container_format, gpt_nonfatal=()):
        """Glance's format checks on the snapshot: an inspection.Verdict."""
        return self._run('inspect snapshot', self._inspect, disk_format,
                         container_format, gpt_nonfatal)

    def flatten_room(self):
        """(ok, reason): whether the clone's pool can take its flatten."""
        return self._run('check room to flatten', flatten_room, self.client,
                         self.dest_pool, self.image)

    def release_source(self):
        """Make the clone independent of the volume (after a flatten)."""
        self._run('unprotect upload snapshot', self._unprotect_snapshot)
        self._undo = [u for u in self._undo if u[1] not in (
            self._unprotect_snapshot, self._remove_snapshot)]
        self._run('remove upload snapshot', self._remove_snapshot)

    def create(self, flatten=False):
        """Clone the upload snapshot; raise :class:`CloneStepError`.

        :meth:`snapshot` comes first. ``flatten`` is a callable returning
        whether to flatten the clone before Glance's snapshot is taken
        (it may look at the clone, e.g. :meth:`flatten_room`), or a bool.
        The clone's image is closed when this returns: Glance uses it next,
        and could not delete an image open here. The caller calls
        :meth:`rollback` when this, or anything it does with the clone
        afterwards, fails.
        """
        features, order = self._run('read clone geometry',
                                    self._clone_geometry)
        self._run('clone into %s' % self.dest_pool, self._clone,
                  features, order)
        if callable(flatten):
            flatten = flatten()
        if flatten:
            self._run('flatten clone', self._flatten)
        self._run('snapshot clone', self._create_image_snapshot)
        self._run('protect clone snapshot', self._protect_image_snapshot)
        if flatten:
            self.release_source()
        self._run('close clone', self._close_image)
        return flatten

    def rollback(self):
        """Undo every step made, newest first; return the undo failures."""
        failures = []
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except self.driver.rbd.ImageNotFound:
                # Already gone: Glance removes the clone itself when its
                # location import task fails and reverts.
                LOG.info('Clone upload of %(vol)s to image %(img)s: '
                         'nothing to %(what)s, already removed',
                         {'vol': self.volume_name, 'img': self.image_id,
                          'what': what})
            except Exception as e:
                LOG.error('Clone upload of %(vol)s to image %(img)s: could '
                          'not %(what)s while cleaning up: %(err)s',
                          {'vol': self.volume_name, 'img': self.image_id,
                           'what': what, 'err': e})
                failures.append((what, e))
        return failures

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
import math
import urllib.parse

from oslo_log import log as logging

from cinder.volume.drivers import rbd as rbd_driver

LOG = logging.getLogger(__name__)

GLANCE_SNAP = 'snap'
UPLOAD_SNAP_PREFIX = 'upload-'
UPLOAD_SNAP_SUFFIX = '.clone_snap'


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


def clone_depth(driver, client, pool, name):
    """Number of RBD ancestors of ``pool/name``, whatever made them."""
    depth = 0
    while True:
        with pool_ioctx(client, pool) as ioctx:
            with rbd_driver.RBDVolumeProxy(driver, name, read_only=True,
                                           client=client.cluster,
                                           ioctx=ioctx) as image:
                try:
                    pool, name, _snap = image.parent_info()
                except driver.rbd.ImageNotFound:
                    return depth
        depth += 1


class UploadClone(object):
    """The RBD side of one clone upload, and how to undo it.

    :param driver: the RBD driver (for its connections and ``rbd`` module).
    :param client: an open :class:`RADOSClient` on the volumes pool.
    :param volume_name: the RBD image of the volume.
    :param dest_pool: the Glance store's pool.
    :param image_id: the Glance image id (the clone's name).
    """

    def __init__(self, driver, client, volume_name, dest_pool, image_id,
                 pending=None, marks=None):
        self.driver = driver
        self.pending = pending
        self.marks = dict(marks or {})
        if pending:
            self.marks[pending[0]] = pending[1]
        self.client = client
        self.volume_name = volume_name
        self.dest_pool = dest_pool
        self.image_id = image_id
        self.snap_name = upload_snap_name(image_id)
        self._undo = []

    def _proxy(self, name, ioctx):
        return rbd_driver.RBDVolumeProxy(self.driver, name,
                                         client=self.client.cluster,
                                         ioctx=ioctx)

    def _run(self, step, func, *args):
        try:
            return func(*args)
        except Exception as e:
            raise CloneStepError(step, e)

    # Each step is a method of its own: one thing to make, one to undo.

    def _create_snapshot(self):
        with self._proxy(self.volume_name, self.client.ioctx) as vol:
            vol.create_snap(self.snap_name)
        self._undo.append(('remove upload snapshot', self._remove_snapshot))

    def _protect_snapshot(self):
        with self._proxy(self.volume_name, self.client.ioctx) as vol:
            vol.protect_snap(self.snap_name)
        self._undo.append(('unprotect upload snapshot',
                           self._unprotect_snapshot))

    def _clone(self, features, order):
        with pool_ioctx(self.client, self.dest_pool) as dest:
            self.driver.RBDProxy().clone(self.client.ioctx, self.volume_name,
                                         self.snap_name, dest, self.image_id,
                                         features=features, order=order)
        self._undo.append(('remove clone', self._remove_clone))

    def _mark_pending(self):
        with pool_ioctx(self.client, self.dest_pool) as dest:
            with self._proxy(self.image_id, dest) as image:
                for key, value in self.marks.items():
                    image.metadata_set(key, value)

    def clear_pending(self):
        """The image is served: the clone is no longer an upload's."""
        with pool_ioctx(self.client, self.dest_pool) as dest:
            with self._proxy(self.image_id, dest) as image:
                image.metadata_remove(self.pending[0])

    def _flatten(self):
        with pool_ioctx(self.client, self.dest_pool) as dest:
            with self._proxy(self.image_id, dest) as image:
                image.flatten()

    def _create_image_snapshot(self):
        with pool_ioctx(self.client, self.dest_pool) as dest:
            with self._proxy(self.image_id, dest) as image:
                image.create_snap(GLANCE_SNAP)
        self._undo.append(('remove clone snapshot',
                           self._remove_image_snapshot))

    def _protect_image_snapshot(self):
        with pool_ioctx(self.client, self.dest_pool) as dest:
            with self._proxy(self.image_id, dest) as image:
                image.protect_snap(GLANCE_SNAP)
        self._undo.append(('unprotect clone snapshot',
                           self._unprotect_image_snapshot))

    # Undo actions.

    def _remove_snapshot(self):
        with self._proxy(self.volume_name, self.client.ioctx) as vol:
            vol.remove_snap(self.snap_name)

    def _unprotect_snapshot(self):
        with self._proxy(self.volume_name, self.client.ioctx) as vol:
            vol.unprotect_snap(self.snap_name)

    def _remove_clone(self):
        with pool_ioctx(self.client, self.dest_pool) as dest:
            self.driver.RBDProxy().remove(dest, self.image_id)

    def _remove_image_snapshot(self):
        with pool_ioctx(self.client, self.dest_pool) as dest:
            with self._proxy(self.image_id, dest) as image:
                image.remove_snap(GLANCE_SNAP)

    def _unprotect_image_snapshot(self):
        with pool_ioctx(self.client, self.dest_pool) as dest:
            with self._proxy(self.image_id, dest) as image:
                image.unprotect_snap(GLANCE_SNAP)

    def _clone_geometry(self):
        """Features and object order for the clone, as Glance would use."""
        stripe_unit = self.driver._get_stripe_unit(self.client.ioctx,
                                                   self.volume_name)
        return self.client.features, int(math.log(stripe_unit, 2))

    def release_source(self):
        """Make the clone independent of the volume (after a flatten)."""
        self._run('unprotect upload snapshot', self._unprotect_snapshot)
        self._undo = [u for u in self._undo if u[1] not in (
            self._unprotect_snapshot, self._remove_snapshot)]
        self._run('remove upload snapshot', self._remove_snapshot)

    def create(self, flatten=False):
        """Make the clone; raise :class:`CloneStepError` on failure.

        The caller calls :meth:`rollback` when this, or anything it does
        with the clone afterwards, fails.
        """
        self._run('snapshot volume', self._create_snapshot)
        self._run('protect volume snapshot', self._protect_snapshot)
        features, order = self._run('read clone geometry',
                                    self._clone_geometry)
        self._run('clone into %s' % self.dest_pool, self._clone,
                  features, order)
        if self.marks:
            self._run('mark clone pending', self._mark_pending)
        if flatten:
            self._run('flatten clone', self._flatten)
        self._run('snapshot clone', self._create_image_snapshot)
        self._run('protect clone snapshot', self._protect_image_snapshot)
        if flatten:
            self.release_source()

    def rollback(self):
        """Undo every step made, newest first; return the undo failures."""
        failures = []
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except Exception as e:
                LOG.error('Clone upload of %(vol)s to image %(img)s: could '
                          'not %(what)s while cleaning up: %(err)s',
                          {'vol': self.volume_name, 'img': self.image_id,
                           'what': what, 'err': e})
                failures.append((what, e))
        return failures

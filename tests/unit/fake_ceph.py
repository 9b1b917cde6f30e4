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

"""A small in-memory Ceph cluster with the rados/rbd calls the driver uses.

It keeps pools, images, snapshots, protection and clone parentage, and
refuses what librbd refuses (removing a protected snapshot, unprotecting a
snapshot with children, removing an image with snapshots or open for
writing), so tests can assert that a failed upload left nothing behind. It
counts RADOS connections and image opens, the round trips tests care about.
"""

import collections
import datetime
import json

RBD_FEATURE_LAYERING = 1
RBD_FEATURE_STRIPINGV2 = 2
RBD_FEATURE_EXCLUSIVE_LOCK = 4
RBD_FEATURE_OBJECT_MAP = 8
RBD_FEATURE_FAST_DIFF = 16
RBD_FEATURE_DEEP_FLATTEN = 32
RBD_FEATURE_JOURNALING = 64
RBD_OPERATION_FEATURE_CLONE_PARENT = 1


class Error(Exception):
    pass


class ImageNotFound(Error):
    pass


class ImageExists(Error):
    pass


class ImageBusy(Error):
    pass


class ImageHasSnapshots(Error):
    pass


class InvalidArgument(Error):
    pass


class PermissionError(Error):  # noqa: A001 (librbd's name)
    pass


class TimeOut(Error):
    pass


class ObjectNotFound(Error):
    pass


class ObjectBusy(Error):
    pass


class ObjectExists(Error):
    pass


class FakeImage(object):
    def __init__(self, size, features, order, parent=None):
        self.size = size
        self.features = features
        self.order = order
        self.parent = parent            # (pool, name, snap) or None
        self.snaps = collections.OrderedDict()   # name -> {'protected'}
        self.metadata = {}
        # Holders of the managed exclusive lock (a writer that died keeps
        # it until another client breaks it).
        self.lock_owners = []
        self.head = b''         # the image's first bytes; zeros after
        self.allocated = None   # bytes of data it shows (None: size // 4)

    def read(self, offset, length):
        data = self.head[offset:offset + length]
        return data + b'\0' * (min(length, self.size - offset) - len(data))


class Cluster(object):
    """The state; one per test."""

    def __init__(self, fsid='fsid-volumes', pools=('volumes', 'images'),
                 default_features=61):
        self.fsid = fsid
        self.pools = {p: {} for p in pools}
        self.default_features = default_features
        self.calls = []
        self.now = 1000000.0
        self.connections = 0                    # made
        self.connected = 0                      # open now
        self.opens = collections.Counter()      # (pool, name) -> opens
        self.writers = collections.Counter()    # (pool, name) -> open now
        # RADOS objects: (pool, name) -> {'omap': {}, 'lock': cookie}
        self.objects = collections.defaultdict(
            lambda: {'omap': {}, 'lock': None})
        # ceph df: pool -> max_avail bytes; osd pool get-quota: max_bytes
        self.max_avail = collections.defaultdict(lambda: 1 << 40)
        self.quota_max_bytes = collections.defaultdict(int)
        self.bytes_read = 0

    def omap(self, pool, name):
        return dict(self.objects[(pool, name)]['omap'])

    def add_image(self, pool, name, size=1 << 30):
        self.pools[pool][name] = FakeImage(size, self.default_features, 22)

    def children(self, pool, name, snap):
        return [(p, n) for p, images in self.pools.items()
                for n, img in images.items()
                if img.parent == (pool, name, snap)]

    def inventory(self):
        """{pool/name: [snap names]} of everything in the cluster."""
        return {'%s/%s' % (p, n): list(img.snaps)
                for p, images in self.pools.items()
                for n, img in images.items()}

    # Module factories, as the driver takes them (rados=..., rbd=...).

    def rados_module(self):
        cluster = self

        class Rados(object):
            def __init__(self, rados_id=None, clustername=None,
                         conffile=None):
                self.connected = False

            def conf_set(self, key, value):
                pass

            def conf_get(self, key):
                if key == 'rbd_default_features':
                    return str(cluster.default_features)
                return None

            def connect(self):
                cluster.connections += 1
                cluster.connected += 1
                self.connected = True

            def shutdown(self):
                if self.connected:
                    cluster.connected -= 1
                self.connected = False

            def get_fsid(self):
                return cluster.fsid

            def open_ioctx(self, pool):
                if pool not in cluster.pools:
                    raise ObjectNotFound(pool)
                return Ioctx(pool)

            def mon_command(self, cmd, inbuf):
                cmd = json.loads(cmd)
                if cmd['prefix'] == 'df':
                    return 0, json.dumps({'pools': [
                        {'name': p, 'stats': {
                            'max_avail': cluster.max_avail[p],
                            'stored': 0}}
                        for p in cluster.pools]}).encode(), ''
                if cmd['prefix'] == 'osd pool get-quota':
                    return 0, json.dumps({
                        'quota_max_bytes':
                            cluster.quota_max_bytes[cmd['pool']]}).encode(), ''
                return -22, b'', 'unknown command'

        class OpCtx(object):
            def __init__(self):
                self.ops = []

            def __enter__(self):
                return self

            def __exit__(self, *args):
                pass

        class Ioctx(object):
            def __init__(self, pool):
                self.pool = pool

            def close(self):
                pass

            def get_pool_name(self):
                return self.pool

            def _obj(self, name):
                return cluster.objects[(self.pool, name)]

            def set_omap(self, op, keys, values):
                op.ops.append(lambda o: o['omap'].update(
                    zip(keys, [v.encode() if isinstance(v, str) else v
                               for v in values])))

            def remove_omap_keys(self, op, keys):
                def remove(o):
                    for key in keys:
                        o['omap'].pop(key, None)
                op.ops.append(remove)

            def operate_write_op(self, op, name):
                obj = self._obj(name)
                for apply in op.ops:
                    apply(obj)

            def get_omap_vals(self, op, start_after, prefix, max_return):
                op.result = []
                op.keys = None
                return op.result, 0

            def get_omap_vals_by_keys(self, op, keys):
                op.result = []
                op.keys = keys
                return op.result, 0

            def operate_read_op(self, op, name):
                if (self.pool, name) not in cluster.objects:
                    raise ObjectNotFound(name)
                omap = self._obj(name)['omap']
                op.result.extend(
                    (k, v) for k, v in sorted(omap.items())
                    if op.keys is None or k in op.keys)

            def lock_exclusive(self, name, lock_name, cookie, desc='',
                               duration=None, flags=0):
                obj = self._obj(name)
                if obj['lock'] == cookie:
                    raise ObjectExists(name)
                if obj['lock'] is not None:
                    raise ObjectBusy(name)
                obj['lock'] = cookie

            def unlock(self, name, lock_name, cookie):
                obj = self._obj(name)
                if obj['lock'] != cookie:
                    raise ObjectNotFound(name)
                obj['lock'] = None

        mod = type(collections)('rados')
        mod.Rados = Rados
        mod.Error = Error
        mod.ObjectNotFound = ObjectNotFound
        mod.ObjectBusy = ObjectBusy
        mod.ObjectExists = ObjectExists
        mod.WriteOpCtx = OpCtx
        mod.ReadOpCtx = OpCtx
        return mod

    def rbd_module(self):
        cluster = self

        def _images(ioctx):
            return cluster.pools[ioctx.pool]

        class RBD(object):
            def clone(self, p_ioctx, p_name, p_snap, c_ioctx, c_name,
                      features=0, order=None, **kwargs):
                cluster.calls.append(('clone', p_ioctx.pool, p_name, p_snap,
                                      c_ioctx.pool, c_name, features, order))
                parent = _images(p_ioctx).get(p_name)
                if parent is None or p_snap not in parent.snaps:
                    raise ImageNotFound(p_name)
                if not parent.snaps[p_snap]['protected']:
                    raise InvalidArgument('parent snapshot not protected')
                if c_name in _images(c_ioctx):
                    raise ImageExists(c_name)
                _images(c_ioctx)[c_name] = FakeImage(
                    parent.size, features, order,
                    parent=(p_ioctx.pool, p_name, p_snap))

            def remove(self, ioctx, name):
                cluster.calls.append(('remove', ioctx.pool, name))
                img = _images(ioctx).get(name)
                if img is None:
                    raise ImageNotFound(name)
                if img.snaps:
                    raise ImageHasSnapshots(name)
                if cluster.writers[(ioctx.pool, name)]:
                    raise ImageBusy('%s has watchers' % name)
                del _images(ioctx)[name]

            def rename(self, ioctx, src, dst):
                _images(ioctx)[dst] = _images(ioctx).pop(src)
                for images in cluster.pools.values():
                    for img in images.values():
                        if img.parent and img.parent[:2] == (ioctx.pool,
                                                             src):
                            img.parent = (ioctx.pool, dst, img.parent[2])

            def list(self, ioctx):
                cluster.calls.append(('list', ioctx.pool))
                return list(_images(ioctx))

            def trash_move(self, ioctx, name, delay=0):
                self.remove(ioctx, name)

            def version(self):
                return (1, 16, 0)

        class Image(object):
            def __init__(self, ioctx, name, snapshot=None, read_only=False):
                if name not in _images(ioctx):
                    raise ImageNotFound(name)
                self.ioctx = ioctx
                self.name = name
                self.snapshot = snapshot
                cluster.opens[(ioctx.pool, name)] += 1
                # librbd watches images opened for writing; read-only
                # opens do not hold up a remove.
                self._watch = None if read_only else (ioctx.pool, name)
                if self._watch:
                    cluster.writers[self._watch] += 1

            @property
            def _img(self):
                try:
                    return _images(self.ioctx)[self.name]
                except KeyError:
                    raise ImageNotFound(self.name)

            def close(self):
                if self._watch:
                    cluster.writers[self._watch] -= 1
                    self._watch = None

            def __enter__(self):
                return self

            def __exit__(self, *args):
                self.close()

            def size(self):
                return self._img.size

            def stripe_unit(self):
                return 1 << self._img.order

            def features(self):
                return self._img.features

            def op_features(self):
                return RBD_OPERATION_FEATURE_CLONE_PARENT

            def create_snap(self, snap):
                cluster.calls.append(('create_snap', self.ioctx.pool,
                                      self.name, snap))
                if snap in self._img.snaps:
                    raise ImageExists(snap)
                self._img.snaps[snap] = {'protected': False,
                                         'created': cluster.now}

            def protect_snap(self, snap):
                cluster.calls.append(('protect_snap', self.ioctx.pool,
                                      self.name, snap))
                if snap not in self._img.snaps:
                    raise ImageNotFound(snap)
                self._img.snaps[snap]['protected'] = True

            def unprotect_snap(self, snap):
                cluster.calls.append(('unprotect_snap', self.ioctx.pool,
                                      self.name, snap))
                if snap not in self._img.snaps:
                    raise ImageNotFound(snap)
                if not self._img.snaps[snap]['protected']:
                    raise InvalidArgument(snap)
                if cluster.children(self.ioctx.pool, self.name, snap):
                    raise ImageBusy(snap)
                self._img.snaps[snap]['protected'] = False

            def remove_snap(self, snap):
                cluster.calls.append(('remove_snap', self.ioctx.pool,
                                      self.name, snap))
                if snap not in self._img.snaps:
                    raise ImageNotFound(snap)
                if self._img.snaps[snap]['protected']:
                    raise ImageBusy(snap)
                del self._img.snaps[snap]

            def is_protected_snap(self, snap):
                return self._img.snaps[snap]['protected']

            def list_snaps(self):
                return [{'id': i, 'name': n, 'size': self._img.size}
                        for i, n in enumerate(self._img.snaps)]

            def set_snap(self, snap):
                self.snapshot = snap

            def lock_get_owners(self):
                return list(self._img.lock_owners)

            def parent_info(self):
                if self._img.parent is None:
                    raise ImageNotFound('no parent')
                return self._img.parent

            def list_children(self):
                return cluster.children(self.ioctx.pool, self.name,
                                        self.snapshot)

            def get_snap_timestamp(self, snap_id):
                # librbd gives a naive datetime in UTC.
                name = list(self._img.snaps)[snap_id]
                return datetime.datetime.fromtimestamp(
                    self._img.snaps[name].get('created', 0),
                    datetime.timezone.utc).replace(tzinfo=None)

            def read(self, offset, length):
                cluster.bytes_read += length
                return self._img.read(offset, length)

            def diff_iterate(self, offset, length, from_snapshot, cb,
                             include_parent=True, whole_object=False):
                img = self._img
                allocated = (img.size // 4 if img.allocated is None
                             else img.allocated)
                if allocated:
                    cb(0, allocated, True)

            def metadata_set(self, key, value):
                self._img.metadata[key] = value

            def metadata_get(self, key):
                return self._img.metadata[key]

            def metadata_remove(self, key):
                del self._img.metadata[key]

            def metadata_list(self):
                return list(self._img.metadata.items())

            def flatten(self):
                cluster.calls.append(('flatten', self.ioctx.pool, self.name))
                self._img.parent = None

        mod = type(collections)('rbd')
        for name, value in list(globals().items()):
            if name.startswith('RBD_') or (isinstance(value, type) and
                                           issubclass(value, Exception)):
                setattr(mod, name, value)
        mod.RBD = RBD
        mod.Image = Image
        return mod

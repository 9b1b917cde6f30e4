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

"""The one Ceph helper of the tools and tests: the cluster as an admin.

Used by tools/demo, tools/bench, tools/leak-check and the functional and
end-to-end tests, to put known data into volumes, read images back, plant
and look for leftovers, and check what the driver left in the pools. It
needs Debian's rados and rbd modules (the venv has them linked in).
"""

import hashlib
import json
import os
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLOUD = os.environ.get('CLOUD_DIR', os.path.join(REPO, '.cloud'))
POOLS = ('volumes', 'images')
MiB = 1024 * 1024


class Ceph(object):
    """Admin access to the cluster (default: .cloud/ceph.conf, admin)."""

    def __init__(self, conffile=None, rados_id='admin', pools=POOLS):
        import rados
        import rbd
        self.rbd = rbd
        self.cluster = rados.Rados(
            conffile=conffile or os.path.join(CLOUD, 'ceph.conf'),
            rados_id=rados_id)
        self.cluster.connect(timeout=30)
        self.ioctx = {p: self.cluster.open_ioctx(p) for p in pools}

    def close(self):
        for ioctx in self.ioctx.values():
            ioctx.close()
        self.cluster.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def image(self, pool, name, read_only=True, snap=None):
        """An open rbd.Image (a context manager)."""
        return self.rbd.Image(self.ioctx[pool], name, snapshot=snap,
                              read_only=read_only)

    def names(self, pool):
        return self.rbd.RBD().list(self.ioctx[pool])

    # Data.

    def fill(self, pool, name, nbytes, seed):
        """Write nbytes of incompressible, seeded data from offset 0."""
        block = hashlib.shake_256(seed.encode()).digest(4 * MiB)
        with self.image(pool, name, read_only=False) as img:
            for offset in range(0, nbytes, 4 * MiB):
                n = min(4 * MiB, nbytes - offset)
                chunk = hashlib.sha256(b'%d' % offset).digest() + block[32:n]
                img.write(chunk[:n], offset)

    def digest(self, pool, name, algo='sha256', snap=None):
        """Hex digest of every byte of an image (or of one snapshot)."""
        digest = hashlib.new(algo)
        with self.image(pool, name, snap=snap) as img:
            size = img.size()
            for offset in range(0, size, 4 * MiB):
                digest.update(img.read(offset, min(4 * MiB, size - offset)))
        return digest.hexdigest()

    def sha256(self, pool, name, snap=None):
        return self.digest(pool, name, 'sha256', snap)

    # What is there.

    def tree(self):
        """{(pool, image): {snapshot: [(child pool, child image)]}}."""
        result = {}
        for pool in self.ioctx:
            for name in self.names(pool):
                try:
                    with self.image(pool, name) as img:
                        snaps = {}
                        for s in img.list_snaps():
                            img.set_snap(s['name'])
                            snaps[s['name']] = list(img.list_children())
                            img.set_snap(None)
                        result[(pool, name)] = snaps
                except self.rbd.ImageNotFound:
                    pass
        return result

    def inventory(self):
        """{'pool/image': sorted snapshot names} of every pool."""
        return {'%s/%s' % key: sorted(snaps)
                for key, snaps in self.tree().items()}

    def trash(self):
        """{pool: [entry]} of the RBD trash.

        An entry is a dict with id, name, source, deferment_end_time.
        """
        return {pool: list(self.rbd.RBD().trash_list(ioctx))
                for pool, ioctx in self.ioctx.items()}

    def descendants(self, pool, image_id):
        """Clones (at any depth) of an image given by id, e.g. in trash."""
        with self.rbd.Image(self.ioctx[pool], image_id=image_id,
                            read_only=True) as img:
            return list(img.list_descendants())

    def space(self):
        """{pool: bytes that still fit} (`ceph df` MAX AVAIL)."""
        ret, out, err = self.cluster.mon_command(json.dumps(
            {'prefix': 'df', 'format': 'json'}), b'', timeout=30)
        if ret:
            raise RuntimeError('ceph df: %d %s' % (ret, err))
        return {p['name']: p['stats']['max_avail']
                for p in json.loads(out)['pools']}

    def parent(self, pool, name):
        """(pool, image, snapshot) of a clone's parent, or None."""
        with self.image(pool, name) as img:
            try:
                return tuple(img.parent_info())
            except self.rbd.ImageNotFound:
                return None

    def journal(self):
        """The driver's upload journal: {image id: record dict}.

        The RADOS object ``rbd_upload_clone.journal`` in the volumes pool
        (cinder_rbd_upload_clone/journal.py), read as the admin.
        """
        import rados
        with rados.ReadOpCtx() as op:
            it, _ret = self.ioctx['volumes'].get_omap_vals(op, '', '', -1)
            try:
                self.ioctx['volumes'].operate_read_op(
                    op, 'rbd_upload_clone.journal')
            except rados.ObjectNotFound:
                return {}
            return {k: json.loads(v) for k, v in it}

    def set_pool_quota(self, pool, max_bytes):
        """``ceph osd pool set-quota <pool> max_bytes``; 0 lifts it."""
        ret, _out, err = self.cluster.mon_command(json.dumps({
            'prefix': 'osd pool set-quota', 'pool': pool,
            'field': 'max_bytes', 'val': str(max_bytes)}), b'')
        if ret:
            raise RuntimeError('set-quota %s: %s' % (pool, err))

    def metadata(self, pool, name):
        """An image's key/value metadata, or None if it does not exist."""
        try:
            with self.image(pool, name) as img:
                return dict(img.metadata_list())
        except self.rbd.ImageNotFound:
            return None

    def describe(self, pool, name):
        """'pool/name' plus its clone parent, for humans."""
        parent = self.parent(pool, name)
        if parent:
            return '%s/%s (COW clone of %s/%s@%s)' % ((pool, name) + parent)
        return '%s/%s (own data, no parent)' % (pool, name)

    # Making and removing.

    def create(self, pool, name, size=4 * MiB):
        self.rbd.RBD().create(self.ioctx[pool], name, size, old_format=False,
                              features=int(self.cluster.conf_get(
                                  'rbd_default_features')))

    def create_volume(self, size=64 * MiB, seed=None):
        """An RBD volume image filled with known data; returns name, sha."""
        name = 'volume-%s' % uuid.uuid4()
        self.create('volumes', name, size)
        digest = hashlib.sha256()
        block = hashlib.sha256((seed or name).encode()).digest() * (MiB // 32)
        with self.image('volumes', name, read_only=False) as img:
            for offset in range(0, size, MiB):
                chunk = block[:min(MiB, size - offset)]
                chunk = chunk[:-8] + offset.to_bytes(8, 'big')
                img.write(chunk, offset)
                digest.update(chunk)
        return name, digest.hexdigest()

    def snapshot(self, pool, name, snap, protect=True):
        with self.image(pool, name, read_only=False) as img:
            img.create_snap(snap)
            if protect:
                img.protect_snap(snap)

    def clone(self, pool, name, snap, child_pool, child):
        self.rbd.RBD().clone(self.ioctx[pool], name, snap,
                             self.ioctx[child_pool], child,
                             features=int(self.cluster.conf_get(
                                 'rbd_default_features')))

    def remove(self, pool, name):
        """Remove an image and its snapshots (test cleanup)."""
        try:
            with self.image(pool, name, read_only=False) as img:
                for snap in img.list_snaps():
                    if img.is_protected_snap(snap['name']):
                        img.unprotect_snap(snap['name'])
                    img.remove_snap(snap['name'])
            self.rbd.RBD().remove(self.ioctx[pool], name)
        except self.rbd.ImageNotFound:
            pass

    def trash_move(self, pool, name):
        """Move an image to the trash; return its trash id."""
        with self.image(pool, name) as img:
            image_id = img.id()
        self.rbd.RBD().trash_move(self.ioctx[pool], name, 0)
        return image_id

    def trash_remove(self, pool, image_id):
        try:
            self.rbd.RBD().trash_remove(self.ioctx[pool], image_id, True)
        except self.rbd.ImageNotFound:
            pass

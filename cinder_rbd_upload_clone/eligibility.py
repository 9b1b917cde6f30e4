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

"""The one decision: may this upload be a copy-on-write clone?

:func:`decide` checks every condition in one place, cheapest first, and
returns a :class:`Decision`: go or no-go, the reason an operator can act on,
and the target store when it is a go. Facts that cost a round trip (Glance's
store list, the Ceph cluster's fsid, Glance's limits) or reads (the format
inspection of the upload snapshot) are passed as callables and fetched only
when the cheaper checks have passed.
"""

import collections

from cinder_rbd_upload_clone import stores as stores_mod

Decision = collections.namedtuple('Decision', 'go reason store')

# What Glance's set_data verifies a signature by (cursive's names).
SIGNATURE_PROPERTIES = ('img_signature', 'img_signature_hash_method',
                        'img_signature_key_type',
                        'img_signature_certificate_uuid')


def _no(reason):
    return Decision(False, reason, None)


def decide(enabled, backend, image_meta, volume, find_store, cluster_fsid,
           quota, inspect):
    """Decide whether an upload may be a clone.

    :param enabled: the backend's ``enable_clone_optimization``.
    :param backend: the backend's name, for messages.
    :param image_meta: the image as Cinder's manager passes it.
    :param volume: the volume being uploaded.
    :param find_store: callable(store_id) returning the target
        :class:`stores.Store` or raising :class:`stores.StoreLookupError`.
    :param cluster_fsid: callable returning the fsid of the volumes' cluster.
    :param quota: callable returning (ok, reason): whether the image's owner
        stays within Glance's limits after the upload.
    :param inspect: callable(store) returning an
        :class:`inspection.Verdict` on the volume's content (taken from the
        upload snapshot it makes), as Glance's upload would judge it.
    """
    if not enabled:
        return _no("enable_clone_optimization is off for backend '%s'" %
                   backend)

    disk_format = image_meta.get('disk_format')
    container_format = image_meta.get('container_format')
    if disk_format != 'raw':
        return _no("image disk_format is '%s', a clone needs 'raw'" %
                   disk_format)
    if container_format != 'bare':
        return _no("image container_format is '%s', a clone needs 'bare'" %
                   container_format)

    signed = sorted(k for k in (image_meta.get('properties') or {})
                    if k in SIGNATURE_PROPERTIES)
    if signed:
        return _no("image carries signature properties (%s): Glance "
                   "verifies a signature only on a data upload" %
                   ', '.join(signed))

    if volume.encryption_key_id:
        return _no("volume %s is encrypted; its key must be copied with "
                   "the generic upload" % volume.id)

    store_id = None
    if volume.volume_type_id and volume.volume_type:
        store_id = (volume.volume_type.extra_specs or {}).get(
            stores_mod.STORE_ID_SPEC)
    try:
        store = find_store(store_id)
    except stores_mod.StoreLookupError as e:
        return _no(str(e))

    if store.type != 'rbd':
        return _no("store '%s' is of type '%s', not 'rbd'" %
                   (store.id, store.type))
    if not store.pool:
        return _no("store '%s' reports no pool" % store.id)
    if not store.fsid:
        return _no("store '%s' reports no Ceph fsid (Glance could not "
                   "reach its cluster)" % store.id)

    try:
        fsid = cluster_fsid()
    except Exception as e:
        return _no("cannot read the fsid of backend '%s''s Ceph cluster: %s"
                   % (backend, e))
    if store.fsid != fsid:
        return _no("store '%s' is on cluster %s, volumes of backend '%s' "
                   "are on cluster %s" % (store.id, store.fsid, backend,
                                          fsid))

    within, why = quota()
    if not within:
        return _no(why)

    verdict = inspect(store)
    if not verdict.ok:
        return _no(verdict.reason)

    return Decision(True, "store '%s' is rbd pool '%s' on the volumes' "
                          "cluster %s; %s; %s" % (store.id, store.pool, fsid,
                                                  why, verdict.reason),
                    store)

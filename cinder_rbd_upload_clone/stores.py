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

"""Glance store discovery: which store an upload targets, and where it is.

Asks Glance ``GET /v2/info/stores/detail`` with Cinder's own service
credentials (the ``[glance]`` keystoneauth section Cinder uses for
privileged calls; on Cinder 26, glance_client.py's backport of it) and
keeps the answer for a configurable time. Every way the answer can be
wrong becomes a :class:`StoreLookupError` whose message is the reason an
operator reads in the log; nothing else escapes.
"""

import collections
import threading
import time

import glanceclient.exc
from oslo_log import log as logging

from cinder import exception

from cinder_rbd_upload_clone import glance_client

LOG = logging.getLogger(__name__)

STORE_ID_SPEC = 'image_service:store_id'

Store = collections.namedtuple('Store', 'id type pool fsid default')


class StoreLookupError(Exception):
    """The target store could not be determined; str() is the reason."""


def _is_true(value):
    return str(value).lower() in ('true', '1', 'yes')


def parse_stores(body):
    """Turn a stores-detail answer into a list of :class:`Store`.

    :raises StoreLookupError: when the answer is not what Glance documents.
    """
    if not isinstance(body, dict) or not isinstance(body.get('stores'), list):
        raise StoreLookupError(
            "Glance's stores detail answer is malformed (no 'stores' list)")
    stores = []
    for entry in body['stores']:
        if not isinstance(entry, dict) or not entry.get('id'):
            raise StoreLookupError(
                "Glance's stores detail answer is malformed (a store "
                "without an id)")
        props = entry.get('properties')
        if not isinstance(props, dict):
            props = {}
        stores.append(Store(id=str(entry['id']),
                            type=entry.get('type'),
                            pool=props.get('pool'),
                            fsid=props.get('fsid'),
                            default=_is_true(entry.get('default', False))))
    return stores


def select_store(stores, store_id=None):
    """Pick the store an upload goes to.

    :param store_id: the volume type's ``image_service:store_id``, if any.
    :raises StoreLookupError: when no such store exists.
    """
    if store_id:
        for store in stores:
            if store.id == store_id:
                return store
        raise StoreLookupError(
            "store '%s' named by the volume type's %s is not one of "
            "Glance's stores (%s)" % (store_id, STORE_ID_SPEC,
                                      ', '.join(s.id for s in stores)))
    for store in stores:
        if store.default:
            return store
    if len(stores) == 1:
        return stores[0]
    raise StoreLookupError("Glance reports no default store")


class StoreDiscovery(object):
    """Cached view of Glance's stores, fetched with service credentials."""

    def __init__(self, ttl, clock=time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cached = None
        self._fetched_at = None

    def invalidate(self):
        with self._lock:
            self._cached = None

    def _fetch(self, context):
        client = glance_client.wrapper()
        try:
            body = client.call(context, 'get_stores_info_detail',
                               privileged_user=True)
        except glanceclient.exc.HTTPNotFound:
            raise StoreLookupError(
                "Glance has no stores detail API (404): it does not run "
                "with multiple stores (enabled_backends)")
        except glanceclient.exc.HTTPForbidden:
            raise StoreLookupError(
                "Glance policy stores_info_detail refused Cinder's [glance] "
                "service user (403): give it the admin or service role")
        except glanceclient.exc.HTTPUnauthorized:
            raise StoreLookupError(
                "Glance refused Cinder's [glance] credentials (401)")
        except exception.GlanceConnectionFailed as e:
            raise StoreLookupError("Glance is unreachable: %s" % e)
        except glanceclient.exc.HTTPException as e:
            raise StoreLookupError(
                "Glance answered the stores detail request with %s" %
                (getattr(e, 'code', None) or e))
        except ValueError as e:
            raise StoreLookupError(
                "Glance's stores detail answer is not JSON: %s" % e)
        except Exception as e:
            raise StoreLookupError(
                "asking Glance for its stores failed: %s: %s" %
                (type(e).__name__, e))
        return parse_stores(body)

    def stores(self, context):
        with self._lock:
            now = self._clock()
            if (self._cached is not None and self._ttl > 0 and
                    now - self._fetched_at < self._ttl):
                return self._cached
        stores = self._fetch(context)
        with self._lock:
            self._cached = stores
            self._fetched_at = self._clock()
        return stores

    def target_store(self, context, store_id=None):
        """The store an upload goes to, or raise :class:`StoreLookupError`."""
        return select_store(self.stores(context), store_id)

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

"""Store discovery: every malformed or missing Glance answer is a reason."""

from unittest import mock

import ddt
import glanceclient.exc
import testtools

from cinder import exception

from cinder_rbd_upload_clone import stores
from tests.unit import base


@ddt.ddt
class ParseStoresTestCase(testtools.TestCase):

    def test_parse_detail(self):
        parsed = stores.parse_stores(base.STORE_DETAIL)
        self.assertEqual(
            [stores.Store('ceph', 'rbd', 'images', 'fsid-volumes', True),
             stores.Store('files', 'file', None, None, False)], parsed)

    @ddt.data(None, [], 'text', {}, {'stores': 'ceph'}, {'stores': None},
              {'stores': [None]}, {'stores': [{'type': 'rbd'}]},
              {'stores': [{'id': ''}]})
    def test_malformed(self, body):
        self.assertRaises(stores.StoreLookupError, stores.parse_stores, body)

    def test_properties_missing_or_wrong(self):
        parsed = stores.parse_stores({'stores': [
            {'id': 'a', 'type': 'rbd'},
            {'id': 'b', 'type': 'rbd', 'properties': 'x'}]})
        self.assertEqual([None, None], [s.pool for s in parsed])
        self.assertEqual([None, None], [s.fsid for s in parsed])

    @ddt.data('true', True, 'True')
    def test_default_spellings(self, value):
        parsed = stores.parse_stores({'stores': [{'id': 'a',
                                                  'default': value}]})
        self.assertTrue(parsed[0].default)


class SelectStoreTestCase(testtools.TestCase):

    def setUp(self):
        super(SelectStoreTestCase, self).setUp()
        self.stores = stores.parse_stores(base.STORE_DETAIL)

    def test_default(self):
        self.assertEqual('ceph', stores.select_store(self.stores).id)

    def test_named(self):
        self.assertEqual('files',
                         stores.select_store(self.stores, 'files').id)

    def test_named_missing(self):
        e = self.assertRaises(stores.StoreLookupError, stores.select_store,
                              self.stores, 'nope')
        self.assertIn("store 'nope'", str(e))
        self.assertIn('ceph, files', str(e))

    def test_no_default(self):
        many = [s._replace(default=False) for s in self.stores]
        self.assertRaises(stores.StoreLookupError, stores.select_store, many)

    def test_single_store_without_default_flag(self):
        one = [self.stores[0]._replace(default=False)]
        self.assertEqual('ceph', stores.select_store(one).id)

    def test_no_stores(self):
        self.assertRaises(stores.StoreLookupError, stores.select_store, [])


@ddt.ddt
class StoreDiscoveryTestCase(testtools.TestCase):

    def setUp(self):
        super(StoreDiscoveryTestCase, self).setUp()
        self.client = mock.Mock()
        self.client.call.return_value = base.STORE_DETAIL
        patcher = mock.patch('cinder_rbd_upload_clone.glance_client.wrapper',
                             return_value=self.client)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.now = [100.0]
        self.discovery = stores.StoreDiscovery(
            ttl=60, clock=lambda: self.now[0])

    def test_asks_with_service_credentials(self):
        store = self.discovery.target_store(mock.sentinel.ctx)
        self.assertEqual('ceph', store.id)
        self.client.call.assert_called_once_with(
            mock.sentinel.ctx, 'get_stores_info_detail',
            privileged_user=True)

    def test_cache_lifetime(self):
        self.discovery.stores(None)
        self.now[0] += 59
        self.discovery.stores(None)
        self.assertEqual(1, self.client.call.call_count)
        self.now[0] += 2
        self.discovery.stores(None)
        self.assertEqual(2, self.client.call.call_count)

    def test_ttl_zero_never_caches(self):
        discovery = stores.StoreDiscovery(ttl=0)
        discovery.stores(None)
        discovery.stores(None)
        self.assertEqual(2, self.client.call.call_count)

    def test_errors_are_not_cached(self):
        self.client.call.side_effect = [glanceclient.exc.HTTPForbidden(),
                                        base.STORE_DETAIL]
        self.assertRaises(stores.StoreLookupError, self.discovery.stores,
                          None)
        self.assertEqual('ceph', self.discovery.target_store(None).id)

    @ddt.data(
        (glanceclient.exc.HTTPNotFound(), 'multiple stores'),
        (glanceclient.exc.HTTPForbidden(), 'stores_info_detail'),
        (glanceclient.exc.HTTPUnauthorized(), '401'),
        (glanceclient.exc.HTTPInternalServerError(), '500'),
        (glanceclient.exc.HTTPServiceUnavailable(), '503'),
        (exception.GlanceConnectionFailed(reason='timed out'),
         'unreachable'),
        (ValueError('Expecting value'), 'not JSON'),
        (KeyError('x'), 'KeyError'),
    )
    @ddt.unpack
    def test_errors_become_reasons(self, error, words):
        self.client.call.side_effect = error
        e = self.assertRaises(stores.StoreLookupError,
                              self.discovery.target_store, None)
        self.assertIn(words, str(e))

    @ddt.data('<html>oops</html>', {'stores': 'x'}, None)
    def test_malformed_answers(self, body):
        self.client.call.return_value = body
        self.assertRaises(stores.StoreLookupError,
                          self.discovery.target_store, None)

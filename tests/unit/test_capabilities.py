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

"""What the backend reports: stats, capabilities, vendor properties."""

from unittest import mock

import ddt

from cinder.volume.drivers import rbd as rbd_driver

from cinder_rbd_upload_clone import compat
from cinder_rbd_upload_clone import driver as our_driver
from cinder_rbd_upload_clone import version
from tests.unit import base


@ddt.ddt
class CapabilitiesTestCase(base.DriverTestCase):

    def _stats(self):
        with mock.patch.object(self.driver, '_get_fsid', return_value='f'), \
                mock.patch.object(self.driver, '_get_pool_stats',
                                  return_value=(1.0, 2.0)), \
                mock.patch.object(self.driver, '_get_usage_info',
                                  return_value=0), \
                mock.patch.object(self.driver, '_supports_qos',
                                  return_value=False):
            return self.driver.get_volume_stats(refresh=True)

    @ddt.data(True, False)
    def test_stats_always_report_clone_upload_enabled(self, enabled):
        self.configuration.enable_clone_optimization = enabled
        self.assertIs(enabled, self._stats()['clone_upload_enabled'])

    @ddt.data(True, False)
    def test_enabled_on_every_release(self, privileged_calls):
        # Cinder 26 (2025.1) too: glance_client.py brings [glance].
        self.configuration.enable_clone_optimization = True
        with mock.patch.object(compat, 'GLANCE_PRIVILEGED_CALLS',
                               privileged_calls):
            self.assertIs(True, self._stats()['clone_upload_enabled'])

    def test_stats_report_our_version_and_rbds(self):
        stats = self._stats()
        self.assertEqual(version.release_string(), stats['driver_version'])
        self.assertNotEqual('unknown', stats['driver_version'])
        self.assertEqual(rbd_driver.RBDDriver.VERSION,
                         stats['rbd_driver_version'])
        self.assertEqual('Open Source', stats['vendor_name'])

    def test_version_is_the_installed_distribution(self):
        from importlib import metadata
        self.assertEqual(metadata.version('cinder-rbd-upload-clone'),
                         our_driver.RBDUploadCloneDriver.VERSION)

    @ddt.data(True, False)
    def test_capabilities_describe_clone_upload_enabled(self, enabled):
        self.configuration.enable_clone_optimization = enabled
        stats = self._stats()
        with mock.patch.object(self.driver, 'get_volume_stats',
                               return_value=stats):
            self.driver.init_capabilities()
        caps = self.driver.capabilities
        self.assertIs(enabled, caps['clone_upload_enabled'])
        # The vendor prefix is the vendor_name the driver reports.
        self.assertEqual(caps['vendor_name'], caps['vendor_prefix'])
        prop = caps['properties']['Open Source:clone_upload_enabled']
        self.assertEqual('boolean', prop['type'])
        self.assertIn('enable_clone_optimization', prop['description'])
        self.assertIn("capabilities:clone_upload_enabled='<is> True'",
                      prop['description'])
        # Cinder's standard properties are still there.
        self.assertIn('thin_provisioning', caps['properties'])

    def test_vendor_properties_of_a_parent_that_has_some(self):
        class Parent(rbd_driver.RBDDriver):
            def _init_vendor_properties(self):
                props = {}
                self._set_property(props, 'acme:x', 'X', 'x', 'string')
                return props, 'acme'

        class Driver(our_driver.mixin.UploadCloneMixin, Parent):
            pass

        drv = Driver(configuration=base.FakeConfiguration())
        props, vendor = drv._init_vendor_properties()
        self.assertEqual('acme', vendor)
        self.assertEqual({'acme:x', 'acme:clone_upload_enabled'}, set(props))

    def test_no_base_driver_log_line(self):
        with mock.patch('cinder.volume.driver.LOG') as log:
            self.driver._init_vendor_properties()
        log.info.assert_not_called()

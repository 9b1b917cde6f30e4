# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The ``[rbd_upload_clone]`` group of tempest.conf."""

from oslo_config import cfg

group = cfg.OptGroup(
    name='rbd_upload_clone',
    title='cinder-rbd-upload-clone validation',
    help='Tests of upload-to-image on a Cinder RBD backend that runs '
         'cinder_rbd_upload_clone.driver.RBDUploadCloneDriver.')

opts = [
    cfg.BoolOpt('enabled',
                default=False,
                help='Run the cinder-rbd-upload-clone tests. Off by default, '
                     'so that installing the plugin changes nothing for '
                     'clouds that do not use the driver.'),
    cfg.StrOpt('volume_type',
               default='',
               help='Volume type whose backend has '
                    'enable_clone_optimization = True. Empty: '
                    '[volume] volume_type, else Cinder\'s default type.'),
    cfg.BoolOpt('expect_clone',
                default=True,
                help='Require that a raw upload was registered through '
                     'Glance\'s location API with an rbd:// URL of the form '
                     'the driver uses (read from the image\'s tasks, which '
                     'its owner may list). False checks only the data, '
                     'for example against the upstream driver.'),
    cfg.StrOpt('rbd_store_id',
               default='',
               help='Glance store id of the rbd store clone uploads land '
                    'in. Empty: Glance\'s default store (GET /v2/info/'
                    'stores).'),
    cfg.BoolOpt('admin_location_checks',
                default=False,
                help='The tester has admin credentials: also check, as '
                     'admin, that the store is of type rbd (GET /v2/info/'
                     'stores/detail) and, where Glance lets admin list '
                     'locations (GET /v2/images/{id}/locations), that the '
                     'location is rbd://<fsid>/<pool>/<image id>/snap in '
                     'that store.'),
    cfg.IntOpt('image_data_size',
               default=4 * 1024 * 1024,
               min=512,
               help='Bytes of random data in the source image the tests '
                    'write; the volume made from it is [volume] '
                    'volume_size GiB.'),
    cfg.IntOpt('collector_timeout',
               default=660,
               help='Seconds the clean-up of a test class retries deleting '
                    'its source image while Glance answers 409: a source '
                    'volume deleted before its uploaded image is kept '
                    'hidden until the driver\'s collector runs (every '
                    'clone_upload_gc_interval seconds, 600 by default).'),
    cfg.IntOpt('task_timeout',
               default=300,
               help='Seconds to wait for an image\'s Glance tasks (the '
                    'location import that computes the hashes) to end.'),
]

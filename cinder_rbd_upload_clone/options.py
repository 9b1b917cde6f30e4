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

"""Configuration options of the upload-clone extension.

The options are per backend: they are registered in Cinder's shared
``backend_defaults`` group (so ``[backend_defaults]`` sets them for every
backend) and appended to each driver's configuration (so a backend section
such as ``[ceph]`` overrides them), exactly as in-tree drivers do.
"""

from oslo_config import cfg

from cinder.volume import configuration
# Imported for its options: a Cinder that defines enable_clone_optimization
# (as the upstream spec proposes) most likely does it next to RBD_OPTS, and
# must have registered it before _register below looks.
from cinder.volume.drivers import rbd  # noqa: F401

FLATTEN_NEVER = 'never'
FLATTEN_SYNC = 'sync'
FLATTEN_BACKGROUND = 'background'

upload_clone_opts = [
    cfg.BoolOpt('enable_clone_optimization',
                default=False,
                help='Upload a volume to a Glance image as a copy-on-write '
                     'RBD clone in the Glance store\'s pool instead of '
                     'copying its data, when the target Glance store is an '
                     'rbd store on the same Ceph cluster and the image is '
                     'raw/bare. Security trade-off: the image is registered '
                     'through Glance\'s location API, so its data never '
                     'passes through Glance on upload; Glance computes the '
                     'checksum and os_hash_value afterwards by reading the '
                     'clone. It also requires Glance\'s Ceph user to read '
                     'the volumes pool, Cinder\'s Ceph user to write the '
                     'images pool, and Cinder\'s service user to hold the '
                     'Glance "service" role. Leave off unless the deployment '
                     'accepts these. When off, uploads behave exactly as '
                     'the upstream RBD driver.'),
    cfg.StrOpt('clone_upload_flatten',
               default=FLATTEN_NEVER,
               choices=[
                   (FLATTEN_NEVER, 'The image stays a copy-on-write clone '
                    'of a snapshot of the volume: the upload takes the same '
                    'short time whatever the size, the image uses no space '
                    'of its own, but the volume\'s RBD data stays (hidden) '
                    'until the image is deleted and clone chains grow.'),
                   (FLATTEN_SYNC, 'Flatten the clone before the image is '
                    'registered, then drop the upload snapshot, as Nova\'s '
                    'RBD direct snapshot does: the image is independent at '
                    'once, but the upload costs a full in-cluster copy.'),
                   (FLATTEN_BACKGROUND, 'Register the image as a clone '
                    '(fast upload), then flatten it in the background and '
                    'drop the upload snapshot when done. Pending flattens '
                    'survive a cinder-volume restart (the collector finds '
                    'and finishes them).')],
               help='When an uploaded image stops depending on the volume. '
                    'Clones deeper than rbd_max_clone_depth are always '
                    'flattened before registration.'),
    cfg.IntOpt('clone_upload_stores_cache_ttl',
               default=300,
               min=0,
               help='Seconds to cache Glance\'s store list '
                    '(GET /v2/info/stores/detail). 0 asks Glance on every '
                    'upload.'),
    cfg.IntOpt('clone_upload_activation_timeout',
               default=60,
               min=1,
               help='Seconds to wait for Glance to make the image active '
                    'after its location is registered. Glance may still '
                    'use the location after that, so on timeout the upload '
                    'fails (no generic copy) and the clone stays, with its '
                    'upload journal record, for the collector: it is '
                    'removed only once Glance shows it does not use it.'),
    cfg.BoolOpt('clone_upload_allow_legacy_location',
                default=False,
                help='Where Glance lacks the service-only location API '
                     '(image API 2.17), register the clone through the '
                     'legacy PATCH /locations call. That call needs '
                     'show_multiple_locations in Glance (see OSSN-0065) and '
                     'Glance then never computes the image\'s checksum or '
                     'os_hash_value. When False such uploads use the '
                     'generic copy.'),
    cfg.ListOpt('clone_upload_gpt_safety_checks_nonfatal',
                default=[],
                help='GPT safety checks whose failure does not stop a clone '
                     'upload, as Glance\'s [image_format] '
                     'gpt_safety_checks_nonfatal does for uploads it '
                     'receives. Set it to Glance\'s value: a check listed '
                     'here and not there lets an upload clone that Glance '
                     'would refuse. Before cloning, the driver runs Glance\'s '
                     'format inspection on the upload snapshot; content '
                     'Glance would refuse takes the generic copy, where '
                     'Glance refuses it.'),
    cfg.IntOpt('clone_upload_image_size_cap',
               default=1099511627776,
               min=1,
               help='Largest volume, in bytes, that may be uploaded as a '
                    'clone: set it to Glance\'s image_size_cap (default '
                    '1 TiB), which Glance applies to uploads and not to '
                    'the location API. Larger volumes take the generic '
                    'copy, where Glance applies its cap.'),
    cfg.BoolOpt('clone_upload_reclaim_hidden_volumes',
                default=True,
                help='With enable_clone_optimization on, also reclaim '
                     'hidden volumes the upstream RBD driver leaves for '
                     'ever: an RBD image volume-<id>.deleted whose Cinder '
                     'volume <id> no longer exists, none of whose '
                     'snapshots has a clone and none of which belongs to '
                     'an upload. Deleting a clone volume also releases its '
                     'snapshot on the source volume, which upstream '
                     'leaves when it removes the clone directly. False '
                     'keeps upstream\'s behaviour for such volumes.'),
    cfg.IntOpt('clone_upload_gc_interval',
               default=600,
               min=0,
               help='Seconds between sweeps that remove upload snapshots '
                    'whose Glance image is gone, volumes kept hidden only '
                    'for such images, and clones left by an interrupted '
                    'upload. 0 disables the periodic sweep (deletes still '
                    'collect what they can).'),
    cfg.IntOpt('clone_upload_gc_grace',
               default=3600,
               min=0,
               help='Seconds an unregistered clone (its Glance image still '
                    'queued or gone) is left alone before a sweep treats it '
                    'as left by an interrupted upload and removes it. The '
                    'sweep at cinder-volume start-up ignores the grace for '
                    'uploads of this host.'),
]

CONF = cfg.CONF

# Options that Cinder itself registered before us (see _register).
upstream_opts = []


def _register(opts, group, conf=CONF):
    """Register ``opts`` in ``group``; keep Cinder's where it has one.

    The spec for this feature proposes ``enable_clone_optimization`` for
    Cinder itself. A Cinder that registers an option of the same name first
    (with its own help text, or default) would make our registration fail
    with ``DuplicateOptError`` and the import of this package with it.
    Instead, Cinder's option is used: the returned list holds Cinder's
    ``Opt`` in place of ours, so the driver appends and reads Cinder's, and
    the sample configuration leaves it to Cinder's namespace.

    :returns: (options to use, the ones that are Cinder's)
    """
    used, theirs = [], []
    for opt in opts:
        try:
            conf.register_opt(opt, group=group)
            used.append(opt)
        except cfg.DuplicateOptError:
            # oslo.config has no public way to read a registered Opt.
            existing = conf._get_opt_info(opt.dest, group)['opt']
            used.append(existing)
            theirs.append(existing)
    return used, theirs


upload_clone_opts[:], upstream_opts[:] = _register(
    upload_clone_opts, configuration.SHARED_CONF_GROUP)


def list_opts():
    """Options for oslo-config-generator, as a backend section shows them.

    Options that Cinder registers itself are documented by Cinder's own
    ``cinder`` namespace, not again here.
    """
    return [(configuration.SHARED_CONF_GROUP,
             [o for o in upload_clone_opts if o not in upstream_opts])]

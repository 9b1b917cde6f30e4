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

"""Glance's upload limits, checked before an upload may clone.

When Glance enforces Keystone unified limits (``use_keystone_limits``), a
data upload (``PUT /v2/images/{id}/file``, what the generic copy does)
checks the owner's ``image_size_total`` and ``image_count_uploading``
(``glance/api/v2/image_data.py``); the location API checks neither. The
generic copy sends no size, so Glance refuses it only when the owner is
already over ``image_size_total``; a clone is refused earlier: it goes
ahead only when the owner stays within every limit *after* the upload.
Everything else takes the generic copy, where Glance decides, so the
outcome is Glance's own.

Limits and usage come from ``GET /v2/info/usage`` asked with the user's
token, as the user would see them. Glance without unified limits answers
with no limits at all. Glance's ``image_size_cap`` (a fixed cap on any
image's size, 1 TiB by default) cannot be read from Glance: the backend's
``clone_upload_image_size_cap`` mirrors it.
"""

import math

from oslo_utils import units

from cinder_rbd_upload_clone import glance_client

SIZE_TOTAL = 'image_size_total'
COUNT_UPLOADING = 'image_count_uploading'


class QuotaUnknown(Exception):
    """Glance's limits could not be read; str() is the reason."""


def read_usage(context, privileged_user=False):
    """{limit name: (usage, limit)} for the context's project.

    :param privileged_user: ask with Cinder's [glance] service user (the
        doctor, which has no user), not with the context's token.
    """
    try:
        usage = glance_client.wrapper().call(
            context, 'get_usage', controller='info',
            privileged_user=privileged_user)
    except Exception as e:
        raise QuotaUnknown('cannot read Glance\'s image limits '
                           '(GET /v2/info/usage): %s: %s' %
                           (type(e).__name__, e))
    if not isinstance(usage, dict):
        raise QuotaUnknown('Glance\'s usage answer is malformed')
    result = {}
    for name, entry in usage.items():
        try:
            result[name] = (int(entry['usage']), int(entry['limit']))
        except (KeyError, TypeError, ValueError):
            raise QuotaUnknown('Glance\'s usage answer for %s is malformed: '
                               '%r' % (name, entry))
    return result


def check(context, size_bytes, size_cap):
    """(ok, reason): may an upload of ``size_bytes`` clone?"""
    if size_bytes > size_cap:
        return False, ('the volume (%d bytes) is larger than '
                       'clone_upload_image_size_cap (%d, Glance\'s '
                       'image_size_cap)' % (size_bytes, size_cap))
    try:
        usage = read_usage(context)
    except QuotaUnknown as e:
        return False, str(e)
    if not usage:
        return True, 'Glance enforces no unified limits'
    size_mib = int(math.ceil(size_bytes / float(units.Mi)))
    deltas = {SIZE_TOTAL: size_mib, COUNT_UPLOADING: 1}
    for name, delta in sorted(deltas.items()):
        if name not in usage:
            continue
        used, limit = usage[name]
        if limit >= 0 and used + delta > limit:
            return False, ('the image owner\'s %s would pass its limit '
                           '(usage %d + %d > limit %d)' % (name, used,
                                                           delta, limit))
    return True, 'within Glance\'s limits (%s)' % ', '.join(
        '%s %d/%d' % (name, used, limit)
        for name, (used, limit) in sorted(usage.items()))

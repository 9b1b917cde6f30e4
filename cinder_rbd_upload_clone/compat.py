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

"""What differs between the Cinder releases this package supports.

Supported: 2025.1 (Cinder 26) to 2026.2 (Cinder 29); ``tox -e
py3-<release>`` runs the unit tests and Cinder's own RBD suite of each.
Each difference the code depends on is named here, found by looking at the
installed Cinder rather than at its version number.
"""

import inspect

# image_utils first: importing cinder.image.glance on its own hits a cycle
# between the two modules.
from cinder.image import image_utils  # noqa: F401
from cinder.image import glance  # noqa: H306


def glance_privileged_calls():
    """Whether ``GlanceClientWrapper.call`` takes ``privileged_user``.

    Cinder 27 (2025.2) added the ``[glance]`` keystoneauth section (the
    service credentials Cinder uses for Glance's service-only APIs) and the
    ``privileged_user`` argument that selects it. Cinder 26 (2025.1) has
    neither: it would pass the argument on to glanceclient, which refuses
    it (TypeError). There glance_client.py registers the section and makes
    the privileged calls itself, as Cinder 27 does.
    """
    params = inspect.signature(glance._create_glance_client).parameters
    return 'privileged_user' in params


GLANCE_PRIVILEGED_CALLS = glance_privileged_calls()

# What the doctor says when the release lacks it.
NO_PRIVILEGED_CALLS = (
    "this Cinder has no [glance] service credentials of its own (they came "
    "with Cinder 27, 2025.2): cinder-rbd-upload-clone registers the "
    "[glance] section and makes Glance's service-only calls (stores "
    "detail, location API) with it, as Cinder 27 does")

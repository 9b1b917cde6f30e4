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

"""This package's version, from its installed metadata (pbr)."""

from pbr import version as pbr_version

version_info = pbr_version.VersionInfo('cinder-rbd-upload-clone')


def release_string():
    """The full version, as pip shows it (e.g. 1.2.0 or 1.2.1.dev3)."""
    try:
        return version_info.release_string()
    except Exception:
        # Neither installed nor in a git checkout pbr can read.
        return 'unknown'

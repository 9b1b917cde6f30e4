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

# Sphinx configuration for the cinder-rbd-upload-clone release notes.
#
# Build from the repository root (reno scans its git history):
# sphinx-build -a -E -W -b html releasenotes/source releasenotes/build/html
# (tox -e releasenotes).

project = 'cinder-rbd-upload-clone Release Notes'
copyright = 'cinder-rbd-upload-clone developers'
author = 'cinder-rbd-upload-clone developers'

extensions = [
    'reno.sphinxext',
]

source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'
exclude_patterns = []
pygments_style = 'sphinx'

html_theme = 'alabaster'
html_title = 'cinder-rbd-upload-clone Release Notes'

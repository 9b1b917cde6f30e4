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

# Sphinx configuration for the cinder-rbd-upload-clone documentation.
#
# Build: sphinx-build -W --keep-going -b html doc/source doc/build/html
# (tox -e docs). The configuration reference imports the package through
# its oslo.config.opts entry point, so the package and Cinder must be
# installed in the building environment.

project = 'cinder-rbd-upload-clone'
copyright = 'cinder-rbd-upload-clone developers'
author = 'cinder-rbd-upload-clone developers'

extensions = [
    # ".. show-options::" and the :oslo.config:option: role.
    'oslo_config.sphinxext',
]

# The sample configuration file is committed at
# _static/cinder-rbd-upload-clone.conf.sample and kept current by
# "tox -e genconfig" (tests/unit/test_sample_config.py fails when it is
# stale). oslo_config.sphinxconfiggen is deliberately not loaded: it would
# rewrite that tracked file in the source tree on every build.

source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'
exclude_patterns = []
pygments_style = 'sphinx'

html_theme = 'alabaster'
html_static_path = ['_static']
html_title = 'cinder-rbd-upload-clone'

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

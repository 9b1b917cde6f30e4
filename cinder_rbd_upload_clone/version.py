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

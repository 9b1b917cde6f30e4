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

"""Glance's format safety checks, applied to the upload's snapshot.

Glance inspects every ``bare`` image it receives through an upload
(``ImageProxy.set_data`` in ``glance/location.py``): it streams the data
through oslo.utils' format inspectors, refuses an image whose content
fails the detected format's ``safety_check()`` (a "raw" image that is
really a qcow2 with a backing file or an external data file, a VMDK with
extents, an unsafe GPT/MBR, ...) or whose format does not match its
``disk_format``, and sets ``virtual_size``. Glance's location API does none
of this, so the clone path does it itself, on the upload snapshot (which
cannot change under it), before the clone is made.

:func:`inspect` feeds the same inspectors exactly what a stream of the
whole snapshot would show them, but reads only the regions they ask for:
between regions it advances their stream position without data (no
inspector captures anything there), and it reads the tail only when an
inspector wants the end of the stream. :func:`glance_verdict` then
applies Glance's rules, line by line from ``set_data``, to the result.

Two differences are deliberate, and both only send an upload to the
generic path, where Glance itself decides: reads are 1 MiB at a time (an
inspector sees at least as much of a region per read as with Glance's
smaller reads), and content whose format cannot be determined is refused
here (Glance does so too with its default ``require_image_format_match``).
"""

import collections
import io

from oslo_utils.imageutils import format_inspector
from oslo_utils import units

READ_CHUNK = units.Mi
# Inspectors of every format together ask for a few hundred KiB of a
# well-formed image; a crafted one cannot make them ask for much more
# (the largest region, a VMDK descriptor, is under 1 MiB).
MAX_READ = 16 * units.Mi

Verdict = collections.namedtuple(
    'Verdict', 'ok reason format virtual_size bytes_read')


class InspectionError(Exception):
    """The snapshot could not be inspected; str() is the reason."""


def _wanted_from(inspector, pos, size):
    """The first offset at or after ``pos`` that ``inspector`` needs."""
    wanted = None
    # The capture regions are the inspectors' own bookkeeping; oslo.utils
    # has no public accessor for them.
    for region in inspector._capture_regions.values():
        if isinstance(region, format_inspector.EndCaptureRegion):
            start = max(pos, size - region.length)
        elif region.complete:
            continue
        else:
            start = region.offset + len(region.data)
            if start < pos:
                if not region.data:
                    continue    # began before pos: a stream missed it too
                start = pos
        if start < size and (wanted is None or start < wanted):
            wanted = start
    return wanted


def inspect(read, size, max_read=MAX_READ, chunk=READ_CHUNK):
    """Run every format inspector over an image of ``size`` bytes.

    :param read: callable(offset, length) returning the image's bytes.
    :returns: (the finished ``InspectWrapper``, bytes read).
    :raises InspectionError: when the inspectors would need more than
        ``max_read`` bytes.
    """
    wrapper = format_inspector.InspectWrapper(io.BytesIO(b''))
    pos = bytes_read = 0
    while pos < size:
        live = [i for i in wrapper._inspectors
                if i not in wrapper._errored_inspectors]
        wants = [w for w in (_wanted_from(i, pos, size) for i in live)
                 if w is not None]
        nxt = min(wants) if wants else size
        if nxt > pos:
            # Nobody captures anything in [pos, nxt): move every
            # inspector's stream position there, as reading it would.
            for inspector in live:
                inspector._total_count = nxt
            pos = nxt
            if pos >= size:
                break
        length = min(chunk, size - pos)
        bytes_read += length
        if bytes_read > max_read:
            raise InspectionError(
                'the format inspectors would read more than %d MiB' %
                (max_read // units.Mi))
        data = read(pos, length)
        if len(data) != length:
            raise InspectionError('short read at offset %d: %d of %d bytes'
                                  % (pos, len(data), length))
        wrapper._process_chunk(data)
        pos += length
    wrapper._finish()
    return wrapper, bytes_read


def glance_verdict(wrapper, disk_format, gpt_nonfatal=(),
                   require_format_match=True):
    """What Glance's ``set_data`` does with the inspected content.

    :returns: (ok, reason, detected format, virtual_size Glance would set).
    """
    virtual_size = 0
    inspector = None
    detected = None
    try:
        matches = wrapper.formats
        matched_formats = {str(i): i for i in matches}
        if matched_formats.keys() == {'iso', 'gpt'}:
            inspector = matched_formats['iso']
        else:
            inspector = wrapper.format
        detected = str(inspector)
        if detected == disk_format:
            virtual_size = inspector.virtual_size
        elif (detected == 'raw' and
              disk_format not in format_inspector.ALL_FORMATS):
            pass
        elif disk_format == 'raw':
            # Glance lets a "raw" image of another format through (with a
            # warning), sized in bytes, if that format's checks pass.
            virtual_size = inspector.actual_size
        else:
            raise format_inspector.ImageFormatError(
                'Image disk_format %s does not match stream data %s' % (
                    disk_format, detected))
        inspector.safety_check()
    except format_inspector.ImageFormatError as e:
        if require_format_match:
            return False, 'format inspection: %s' % e, detected, 0
    except format_inspector.SafetyCheckFailed as e:
        fatal = set(e.failures) - set(gpt_nonfatal)
        if disk_format in ('aki', 'ari'):
            fatal.discard('mbr')
        if not (inspector.NAME == 'gpt' and not fatal):
            return False, ('content detected as %s failed Glance\'s safety '
                           'checks: %s' % (detected, '; '.join(
                               '%s: %s' % kv for kv in sorted(
                                   e.failures.items())))), detected, 0
    except Exception as e:
        if require_format_match:
            return False, ('format inspection failed: %s: %s' %
                           (type(e).__name__, e)), detected, 0
    return True, None, detected, virtual_size


def check(read, size, disk_format, container_format, gpt_nonfatal=()):
    """Inspect an image as Glance would on upload; return a Verdict."""
    if container_format != 'bare':
        # Glance inspects only bare images.
        return Verdict(True, 'not inspected (container_format %s)' %
                       container_format, None, 0, 0)
    try:
        wrapper, bytes_read = inspect(read, size)
    except InspectionError as e:
        return Verdict(False, 'format inspection: %s' % e, None, 0, 0)
    ok, reason, detected, virtual_size = glance_verdict(
        wrapper, disk_format, gpt_nonfatal)
    if ok:
        reason = 'content is %s (%d KiB read)' % (detected,
                                                  bytes_read // units.Ki)
    return Verdict(ok, reason, detected, virtual_size, bytes_read)

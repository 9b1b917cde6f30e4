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

"""Cluster operations in ONE process of Debian's python3 (rados, rbd).

Run by cloudharness.ceph as `/usr/bin/python3 ceph_admin.py CONF OPS`;
the harness itself stays stdlib-only, and one process with the bindings
replaces a dozen `ceph` CLI calls (each costs about 0.6 s). OPS is a JSON
list of [kind, args...]; the result is one JSON object on stdout.
"""

import json
import sys
import threading
import time

import rados
import rbd


def main(conf, ops):
    c = rados.Rados(conffile=conf, name='client.admin')
    c.connect(timeout=20)

    def mon(cmd, inbuf=b''):
        ret, out, err = c.mon_command(json.dumps(cmd), inbuf, timeout=60)
        if ret:
            sys.exit('ceph %s failed: %d %s' % (cmd['prefix'], ret, err))
        return out

    def mon_json(prefix, **kw):
        return json.loads(mon(dict(prefix=prefix, format='json', **kw))
                          or b'null')

    result = {}
    for op in ops:
        kind = op[0]
        if kind == 'keyring':            # entity, caps, path
            with open(op[3], 'wb') as f:
                f.write(mon({'prefix': 'auth get-or-create',
                             'entity': op[1], 'caps': op[2]}))
        elif kind == 'osd_new':          # uuid, secret
            for i in mon_json('osd ls'):
                mon({'prefix': 'osd purge', 'id': i,
                     'yes_i_really_mean_it': True})
            out = mon({'prefix': 'osd new', 'uuid': op[1]},
                      json.dumps({'cephx_secret': op[2]}).encode())
            result['osd_id'] = out.decode().strip()
        elif kind == 'wait_osd_up':      # timeout
            deadline = time.time() + op[1]
            while mon_json('osd stat').get('num_up_osds', 0) < 1:
                if time.time() > deadline:
                    sys.exit('osd not up after %ss' % op[1])
                time.sleep(0.3)
        elif kind == 'pools':            # names: create all, then init all
            for name in op[1]:
                if name not in c.list_pools():
                    mon({'prefix': 'osd pool create', 'pool': name,
                         'pg_num': 8, 'pgp_num': 8})
                    result.setdefault('created', []).append(name)

            def init(name):  # waits for the pool's PGs: run in parallel
                with c.open_ioctx(name) as io:
                    rbd.RBD().pool_init(io, False)
            todo = [threading.Thread(target=init, args=(name,))
                    for name in op[1]
                    if 'rbd' not in (mon_json('osd pool application get',
                                              pool=name) or {})]
            [t.start() for t in todo]
            [t.join() for t in todo]
        elif kind == 'rbd_ls_as':        # client id, pool: proves a key
            u = rados.Rados(conffile=conf, name='client.' + op[1])
            u.connect(timeout=20)
            with u.open_ioctx(op[2]) as io:
                rbd.RBD().list(io)
            u.shutdown()
        elif kind == 'report':           # health, PGs, space: `status`
            result['status'] = mon_json('status')
            result['health'] = mon_json('health', detail='detail')
            result['df'] = mon_json('df')
    c.shutdown()
    print(json.dumps(result))


if __name__ == '__main__':
    main(sys.argv[1], json.loads(sys.argv[2]))

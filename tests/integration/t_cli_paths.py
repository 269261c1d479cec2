#!/usr/bin/python3
"""t_cli_paths: `mitral index stats|rebuild` pointed at the wrong place (a mistyped --data, a
storage root that is not mounted) say so and change nothing:
  - `index stats --data DIR` where DIR holds no index: an error naming the index path, exit 1,
    and no index.sqlite is created there (stats only reads);
  - `index rebuild` whose storage root does not exist: an error naming it, exit 1, and the
    existing index keeps its rows (a rebuild from nothing would have emptied it)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import check  # noqa: E402
import gen_mr  # noqa: E402


def body():
    if not lib.IS_MITRAL:
        lib.skip("mitral's CLI")
    empty = lib.tmpdir("mt-cli-empty-")
    r = lib.run([lib.MITRAL, "index", "stats", "--data", empty])
    check(r.returncode == 1, "stats on a directory without an index exits 1: rc=%s" % r.returncode)
    check(os.path.join(empty, "index.sqlite") in r.stderr,
          "stats names the index it did not find: " + r.stderr[-300:])
    check(not os.path.exists(os.path.join(empty, "index.sqlite")),
          "stats creates no index.sqlite in a directory that had none")

    node = lib.Node("paths").start()
    src = lib.tmpdir("mt-cli-src-")
    files = gen_mr.generate(src, count=3, series=1, phases=3, seed="t_cli_paths")
    r = lib.storescu(node, files)
    check(r.returncode == 0, "storescu: " + r.stdout[-300:])
    check(node.stop() == 0, "node stops")

    conf = os.path.join(node.dir, "moved.yaml")
    missing = os.path.join(node.dir, "not-mounted", "storage")
    with open(conf, "w") as f:
        f.write("storage:\n  root: %s\nindex:\n  path: %s\n" % (missing, node.index))
    r = lib.run([lib.MITRAL, "index", "rebuild", "-c", conf])
    check(r.returncode == 1, "rebuild with a storage root that does not exist exits 1: rc=%s"
          % r.returncode)
    check(missing in r.stderr, "rebuild names the missing storage root: " + r.stderr[-300:])
    check(not os.path.exists(missing), "rebuild does not create the missing storage root")
    r = lib.run([lib.MITRAL, "index", "stats", "--data", node.data])
    check(lib.parse_stats(r.stdout).get("instances") == len(files),
          "the index keeps its %d instances: %s" % (len(files), r.stdout))


lib.run_guarded(body)

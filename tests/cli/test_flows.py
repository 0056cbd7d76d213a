"""``jqc flow show``: the tree with states, as text and JSON, and a one-line error for a missing job."""

from __future__ import annotations

import contextlib
import io
import json

import jqc
from tests.cli.test_commands import run
from tests.workflows.flowkit import photo_flow, run_one


def test_show_draws_the_tree_with_states(conn: jqc.Connection) -> None:
    conn.queue("photos").add_flow(photo_flow())
    run_one(conn.queue("tags"), ["cat", "[red]"])  # brackets must not be read as markup
    code, text = run(conn, "flow", "show", "photos", "pub-cat.jpg")
    lines = text.splitlines()
    assert code == 0
    assert lines[0] == "photos/pub-cat.jpg publish waiting-children"
    assert "resize/resize-cat.jpg resize waiting-children" in lines[1]
    assert "thumbs/thumb-cat.jpg thumbnail waiting" in lines[2] and lines[2].index("thumbs") > lines[1].index("resize")
    assert "tags/tag-cat.jpg tag completed  result ['cat', '[red]']" in lines[3]
    code, shown = run(conn, "flow", "show", "photos", "pub-cat.jpg", "--json")
    tree = json.loads(shown)
    assert code == 0 and tree["state"] == "waiting-children"
    assert [c["state"] for c in tree["children"]] == ["waiting-children", "completed"]
    assert tree["children"][0]["children"][0]["id"] == "thumb-cat.jpg"


def test_show_of_a_missing_job_is_one_line_and_exit_1(conn: jqc.Connection) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code, _ = run(conn, "flow", "show", "photos", "nope")
    assert code == 1
    assert err.getvalue().strip().count("\n") == 0 and "no job 'nope' in queue 'photos'" in err.getvalue()

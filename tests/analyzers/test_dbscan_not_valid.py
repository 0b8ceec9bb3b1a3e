"""DB scan: a NOT VALID constraint is counted — orphans under a foreign key, rows a CHECK
refuses — read-only, with the query that finds them; a NOT VALID constraint the data
already meets stays a low note."""

from __future__ import annotations

import pytest

from optimizations.analyzers.base import CHECK_FAILED

from . import dbscan_fixtures as fx

pytestmark = pytest.mark.postgres

SCHEMA = """
CREATE TABLE parents (id int PRIMARY KEY);
INSERT INTO parents SELECT generate_series(1, 10);

CREATE TABLE kids (id int, parent_id int REFERENCES parents, note text);
CREATE INDEX kids_parent_idx ON kids (parent_id);
ALTER TABLE kids DROP CONSTRAINT kids_parent_id_fkey;
INSERT INTO kids SELECT i, CASE WHEN i <= 3 THEN 100 + i WHEN i = 4 THEN NULL ELSE 1 END, 'n'
    FROM generate_series(1, 20) i;                       -- 3 orphans, 1 NULL (not checked)
ALTER TABLE kids ADD CONSTRAINT kids_parent_fk FOREIGN KEY (parent_id) REFERENCES parents
    NOT VALID;

CREATE TABLE good_kids (id int, parent_id int);
CREATE INDEX good_kids_parent_idx ON good_kids (parent_id);
INSERT INTO good_kids SELECT i, 1 + i % 10 FROM generate_series(1, 20) i;
ALTER TABLE good_kids ADD CONSTRAINT good_kids_parent_fk FOREIGN KEY (parent_id)
    REFERENCES parents NOT VALID;                          -- met by every row

CREATE TABLE prices (id int, cents int, label text);
INSERT INTO prices VALUES (1, -5, 'half'), (2, 10, 'a'), (3, NULL, 'b'), (4, -1, '50% off');
ALTER TABLE prices ADD CONSTRAINT prices_positive
    CHECK (cents > 0 AND label NOT LIKE '%!%') NOT VALID;  -- 2 rows false, 1 NULL
"""


@pytest.fixture(scope="module")
def result():
    port = fx.acquire_cluster()
    db = "kz_not_valid"
    url = fx.fresh_database(port, db)
    try:
        with fx.admin(port, db) as conn:
            conn.execute(SCHEMA)
        yield fx.scan(url, checks=["db.invalid_constraint"])
    finally:
        fx.drop_database(port, db)
        fx.release_cluster()


def test_orphans_under_a_not_valid_foreign_key_are_counted(result):
    kids = next(f for f in fx.by_rule(result, "db.invalid_constraint") if f.location == "kids")

    assert kids.evidence["violating_rows"] == 3  # the NULL key is not checked, as in PostgreSQL
    assert kids.severity == "high" and kids.category == "integrity"
    assert "3 orphan rows break it" in kids.title
    assert "NOT EXISTS (SELECT 1 FROM parents" in kids.evidence["query"]
    assert kids.fix_hint.startswith("Repair or remove the orphan rows first")
    assert "VALIDATE CONSTRAINT kids_parent_fk" in kids.fix_hint


def test_rows_a_not_valid_check_refuses_are_counted(result):
    prices = next(f for f in fx.by_rule(result, "db.invalid_constraint") if f.location == "prices")

    assert prices.evidence["violating_rows"] == 2  # false twice; NULL passes a CHECK
    assert prices.category == "integrity"
    assert "2 rows violating it break it" in prices.title


def test_a_not_valid_constraint_the_data_meets_stays_a_note(result):
    good = next(f for f in fx.by_rule(result, "db.invalid_constraint") if f.location == "good_kids")

    assert good.evidence["violating_rows"] == 0
    assert good.severity == "low" and good.category == "correctness"
    assert "query" not in good.evidence
    assert fx.check(result, "db.invalid_constraint").status == CHECK_FAILED

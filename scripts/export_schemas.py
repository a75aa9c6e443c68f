"""Write the JSON Schemas of casebench's typed files into docs/schema/ (tests/test_schemas.py checks that the
committed files equal what this writes).

Usage: python scripts/export_schemas.py
"""

from __future__ import annotations

import json
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "schema"


def schemas() -> dict[str, dict]:
    """File name -> JSON Schema of each typed file format."""
    from casebench.benchmarks.spec import json_schema as spec_schema
    from casebench.results_model import json_schema as results_schema

    return {"benchmark-spec.schema.json": spec_schema(), "results.schema.json": results_schema()}


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas().items():
        (DOCS / name).write_text(render(schema), encoding="utf-8")
        print(DOCS / name)


if __name__ == "__main__":
    main()

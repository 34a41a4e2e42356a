"""Regenerate schema.json from the pydantic models: `python -m playground.flows.write_schema`."""

from playground.flows.spec import SCHEMA_PATH, schema_text

if __name__ == "__main__":
    SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")

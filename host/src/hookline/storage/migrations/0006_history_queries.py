from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

# Indexes of the history's queries (hookline/storage/history.py), written by hand:
#
# * (workflow_id, created_at, status): a workflow's executions since a time, counted by status
#   from the index alone (GET /api/workflows?include=activity). Both databases.
# * PostgreSQL only: a trigram index (GIN, pg_trgm) of the text the executions list's `q`
#   searches, so that a search finds its rows without reading every execution. pg_trgm ships
#   with PostgreSQL and is a trusted extension (a database owner may create it); where it
#   cannot be created the index is left out and the search reads the table (it still works).
#   The expression must stay exactly storage/history.py's POSTGRES_SEARCH_TEXT, or the index
#   is not used (test_history_filters checks the plan). SQLite needs none: LIKE on the stored
#   JSON text reads a million executions in well under a second (bench/history_queries.py).
#
# Building them takes time on a large history, during which new executions wait: on a million
# executions, about 1 s on SQLite and 30 s on PostgreSQL (the trigram index). To build the
# latter beforehand without blocking writes, run the CREATE INDEX below with CONCURRENTLY
# (docs/development.md); this migration then finds it and skips it.

SEARCH_INDEX = "idx_hookline_execution_search"
SEARCH_TEXT = (
    "(coalesce((context -> 'body')::text, '') || ' ' || coalesce((context -> 'query')::text, '')"
    " || ' ' || coalesce((context -> 'headers')::text, ''))"
)

CREATE_TRIGRAM_EXTENSION = """
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'hookline: pg_trgm cannot be created here (%), so the text search of executions is not indexed', SQLERRM;
END
$$
"""

CREATE_SEARCH_INDEX = f"""
DO $$
DECLARE
    trgm_schema text;
BEGIN
    SELECT n.nspname INTO trgm_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS %I ON "hookline_execution" USING gin (%s %I.gin_trgm_ops)',
            '{SEARCH_INDEX}', $search${SEARCH_TEXT}$search$, trgm_schema
        );
        -- Statistics of the indexed expression: without them the planner guesses how many rows
        -- a pattern matches, and may read a million rows through the index for a common word.
        ANALYZE "hookline_execution";
    END IF;
END
$$
"""


class PostgresSQL(ops.RunSQL):
    """RunSQL on PostgreSQL only (on SQLite, nothing)."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.client.capabilities.dialect != "sqlite":
            await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.client.capabilities.dialect != "sqlite":
            await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [('hookline', '0005_refused_calls')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Execution',
            index=Index(fields=['workflow_id', 'created_at', 'status']),
        ),
        PostgresSQL(
            [CREATE_TRIGRAM_EXTENSION, CREATE_SEARCH_INDEX],
            reverse_sql=f'DROP INDEX IF EXISTS "{SEARCH_INDEX}"',
        ),
    ]

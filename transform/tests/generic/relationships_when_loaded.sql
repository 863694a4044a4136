{#-
    dbt's relationships test, run only once `parent_table` ('source.table', the raw table the `to` model
    reads) is loaded. Before that the parent model is empty, and the child rows of a source whose other
    tables are loaded would all fail the test.
-#}
{% test relationships_when_loaded(model, column_name, to, field, parent_table) %}
    {%- set parts = parent_table.split('.') -%}
    {%- if parts | length != 2 -%}
        {{ exceptions.raise_compiler_error(
            "Invalid parent_table \"" ~ parent_table ~ "\" in a relationships_when_loaded test of "
            ~ column_name ~ ": write it as source.table, for example facebook.campaigns."
        ) }}
    {%- endif -%}
    {%- set source_name, table_name = parts -%}
    {%- if execute and not source_is_loaded(source_name, table_name) -%}
        select null as {{ column_name }} where false
    {%- else -%}
        {{ adapter.dispatch('test_relationships', 'dbt')(model, column_name, to, field) }}
    {%- endif -%}
{% endtest %}

{#-
    Raw tables appear in the warehouse only after their source's first load, and a tenant may use only
    some of the sources. Staging models read their source tables through `source_or_empty`, so that a
    table not loaded yet builds as an empty staging model and the marts still build.
    NOTE: the check runs at build time, so a staging view stays empty until the first build after the load.
-#}

{#-
    Relation of the source table `source_name`.`table_name` when it exists in the warehouse. Otherwise an
    empty subquery with the columns and data types declared for the table in its sources.yml, and one log
    line naming the table (unless `log_missing` is false). At parse time it returns the source relation,
    so the model still depends on the source in the DAG.
-#}
{% macro source_or_empty(source_name, table_name, log_missing=true) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute or source_is_loaded(source_name, table_name) -%}
        {{ return(relation) }}
    {%- endif -%}

    {%- if log_missing -%}
        {{ log(
            "Source table " ~ source_name ~ "." ~ table_name ~ " is not loaded yet, so "
            ~ model.name ~ " reads it as an empty table.",
            info=True
        ) }}
    {%- endif -%}
    {{ return(empty_source_relation(source_name, table_name)) }}
{%- endmacro %}


{#- True when the source table exists in the warehouse. Call it only at execution time (`execute` is true). -#}
{% macro source_is_loaded(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- set found = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) -%}
    {{ return(found is not none) }}
{%- endmacro %}


{#- Subquery with no rows and the declared columns of a source table, each NULL cast to its `data_type`. -#}
{% macro empty_source_relation(source_name, table_name) -%}
    {%- set columns = declared_source_columns(source_name, table_name) -%}
    {%- set selected = [] -%}
    {%- for column in columns -%}
        {%- if not column.data_type -%}
            {{ exceptions.raise_compiler_error(
                "Source table " ~ source_name ~ "." ~ table_name ~ " is not loaded yet, and its column "
                ~ column.name ~ " has no data_type in sources.yml: declare the type of every column the "
                ~ "staging models read, as the loaded table has it."
            ) }}
        {%- endif -%}
        {%- do selected.append("cast(null as " ~ column.data_type ~ ") as " ~ adapter.quote(column.name)) -%}
    {%- endfor -%}
    {{ return("(select " ~ selected | join(", ") ~ " where false)") }}
{%- endmacro %}


{#- Columns declared for a source table in sources.yml, in their declared order. -#}
{% macro declared_source_columns(source_name, table_name) -%}
    {%- set nodes = graph.sources.values()
        | selectattr('source_name', 'equalto', source_name)
        | selectattr('name', 'equalto', table_name)
        | list -%}
    {%- set columns = (nodes[0].columns.values() | list) if nodes else [] -%}
    {%- if not columns -%}
        {{ exceptions.raise_compiler_error(
            "Source table " ~ source_name ~ "." ~ table_name ~ " is not loaded yet, and sources.yml declares "
            ~ "no columns for it: list the columns the staging models read, each with its data_type."
        ) }}
    {%- endif -%}
    {{ return(columns) }}
{%- endmacro %}

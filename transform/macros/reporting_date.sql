{#- Date of the instant `timestamp_tz` (TIMESTAMP WITH TIME ZONE) in the reporting time zone (dbt var reporting_timezone). -#}
{% macro reporting_date(timestamp_tz) -%}
    cast(timezone('{{ reporting_timezone() }}', {{ timestamp_tz }}) as date)
{%- endmacro %}


{% macro reporting_timezone() -%}
    {%- set zone = var('reporting_timezone') | string | trim -%}
    {%- if not modules.re.fullmatch('[A-Za-z0-9_+/-]+', zone) -%}
        {{ exceptions.raise_compiler_error(
            "Invalid dbt var reporting_timezone \"" ~ var('reporting_timezone') ~ "\""
            ~ ": set it to an IANA time zone name such as UTC or Europe/Berlin."
        ) }}
    {%- endif -%}
    {{ return(zone) }}
{%- endmacro %}

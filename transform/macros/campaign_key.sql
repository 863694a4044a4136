{#-
    Key that matches an ad platform's campaign name to the UTM campaign name of analytics and orders:
    lower-case and trimmed, every run of characters other than a-z and 0-9 replaced by one '_', and
    leading or trailing '_' removed. A missing or blank name gets 'not_set', the key of GA4's '(not set)'.
-#}
{% macro campaign_key(name) -%}
    coalesce(
        nullif(trim(regexp_replace(lower(trim({{ name }})), '[^a-z0-9]+', '_', 'g'), '_'), ''),
        'not_set'
    )
{%- endmacro %}

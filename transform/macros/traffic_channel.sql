{#-
    Paid channel of a session from its source and medium, compared lower-case. It is 'google_ads' for
    google with cpc, ppc or paid_search, 'meta' for facebook, instagram, fb or ig with paid_social, cpc
    or paid, and 'organic_and_other' for everything else.
-#}
{% macro traffic_channel(source, medium) -%}
    case
        when lower(trim({{ source }})) = 'google'
            and lower(trim({{ medium }})) in ('cpc', 'ppc', 'paid_search')
            then 'google_ads'
        when lower(trim({{ source }})) in ('facebook', 'instagram', 'fb', 'ig')
            and lower(trim({{ medium }})) in ('paid_social', 'cpc', 'paid')
            then 'meta'
        else 'organic_and_other'
    end
{%- endmacro %}

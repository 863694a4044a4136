{#- Money helpers: exact scaled integers to decimals, and "as of" conversion through the fx_rates seed. -#}

{% macro reporting_currency() -%}
    {%- set code = var('reporting_currency') | string | trim | upper -%}
    {%- if not modules.re.fullmatch('[A-Z]{3}', code) -%}
        {{ exceptions.raise_compiler_error(
            "Invalid dbt var reporting_currency \"" ~ var('reporting_currency') ~ "\""
            ~ ": set it to an ISO 4217 code such as USD, with a rate in seeds/fx_rates.csv."
        ) }}
    {%- endif -%}
    {{ return(code) }}
{%- endmacro %}


{#-
    Exact DECIMAL(38, 9) value of an integer `amount` counted in units of 10^-`scale`: Stripe minor units with
    the currency's exponent as the scale, Google Ads micros with scale 6. Scales above 9 would lose digits.
-#}
{% macro scaled_to_decimal(amount, scale) -%}
    cast(cast({{ amount }} as decimal(38, 0)) * cast(power(10, -({{ scale }})) as decimal(18, 9)) as decimal(38, 9))
{%- endmacro %}


{#-
    Units of `currency` per EUR on `on_date`: the latest seed rate dated on or before it, NULL when none.
    The seed's columns are renamed inside the subquery, so that unqualified column names in the arguments
    (such as `currency` or `date`) bind to the caller's row and not to the seed.
-#}
{% macro fx_rate_as_of(currency, on_date) -%}
    (
        select arg_max(fx.fx_per_eur, fx.fx_rate_date)
        from (
            select currency as fx_currency, rate_date as fx_rate_date, per_eur as fx_per_eur
            from {{ ref('fx_rates') }}
        ) as fx
        where fx.fx_currency = {{ currency }} and fx.fx_rate_date <= {{ on_date }}
    )
{%- endmacro %}


{#-
    `amount` in `currency` on `on_date`, converted into the reporting currency at the rates of that date.
    A currency or date without a rate gives NULL, which the not_null tests on *_rc columns report.
-#}
{% macro to_reporting_currency(amount, currency, on_date) -%}
    cast(
        {{ amount }}
        / {{ fx_rate_as_of(currency, on_date) }}
        * {{ fx_rate_as_of("'" ~ reporting_currency() ~ "'", on_date) }}
        as decimal(38, 9)
    )
{%- endmacro %}

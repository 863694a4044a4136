{#-
    Recompute spend_rc of ad_performance_daily and gross_rc of revenue_daily with ASOF joins on the
    fx_rates seed, independently of the conversion macro, and report rows that differ by more than 1e-6
    of the amount. Amounts already in the reporting currency must come out unchanged.
-#}
with amounts as (
    select 'ad_performance_daily' as model, date, currency, spend as amount, spend_rc as amount_rc
    from {{ ref('ad_performance_daily') }}

    union all

    select 'revenue_daily', date, currency, gross, gross_rc
    from {{ ref('revenue_daily') }}
),

rates as (
    select currency, rate_date, per_eur from {{ ref('fx_rates') }}
),

reporting_rates as (
    select rate_date, per_eur from rates where currency = '{{ reporting_currency() }}'
),

recomputed as (
    select
        amounts.*,
        amounts.amount / source_rate.per_eur * reporting_rate.per_eur as expected_rc
    from amounts
    asof left join rates as source_rate
        on source_rate.currency = amounts.currency and amounts.date >= source_rate.rate_date
    asof left join reporting_rates as reporting_rate
        on amounts.date >= reporting_rate.rate_date
)

select model, date, currency, amount, amount_rc, expected_rc
from recomputed
where expected_rc is null
    or abs(amount_rc - expected_rc) > 1e-6 * greatest(abs(amount), 1)
    or (currency = '{{ reporting_currency() }}' and amount_rc <> amount)

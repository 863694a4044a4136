{#-
    Store revenue per store, currency and day in the reporting time zone (dbt var reporting_timezone).
    Stripe: gross is the captured amount of succeeded charges, refunds the refunds that did not fail,
    each on its own creation date. Magento: gross is the base grand total of orders that are not canceled,
    refunds the base grand total of credit memos that are not canceled.
-#}
with orders as (
    select created_date as date, 'stripe' as store, currency, count(*) as orders, sum(amount_captured) as gross
    from {{ ref('stg_stripe__charges') }}
    where is_revenue
    group by all

    union all

    select created_date as date, 'magento' as store, currency, count(*) as orders, sum(grand_total) as gross
    from {{ ref('stg_magento__orders') }}
    where is_revenue
    group by all
),

refunds as (
    select created_date as date, 'stripe' as store, currency, sum(amount) as refunds
    from {{ ref('stg_stripe__refunds') }}
    where is_refund
    group by all

    union all

    select created_date as date, 'magento' as store, currency, sum(grand_total) as refunds
    from {{ ref('stg_magento__creditmemos') }}
    where is_refund
    group by all
),

daily as (
    select
        date,
        store,
        currency,
        coalesce(orders.orders, 0) as orders,
        coalesce(orders.gross, 0) as gross,
        coalesce(refunds.refunds, 0) as refunds
    from orders
    full outer join refunds using (date, store, currency)
),

converted as (
    select
        *,
        gross - refunds as net,
        {{ to_reporting_currency('gross', 'currency', 'date') }} as gross_rc,
        {{ to_reporting_currency('refunds', 'currency', 'date') }} as refunds_rc
    from daily
)

select
    date,
    store,
    currency,
    orders,
    gross,
    refunds,
    net,
    gross_rc,
    refunds_rc,
    gross_rc - refunds_rc as net_rc,
    '{{ reporting_currency() }}' as reporting_currency
from converted

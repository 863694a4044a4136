-- Orders, gross and refunds per store and currency in revenue_daily equal the staging totals.
with staged_gross as (
    select 'stripe' as store, currency, count(*) as orders, sum(amount_captured) as gross
    from {{ ref('stg_stripe__charges') }}
    where is_revenue
    group by currency

    union all

    select 'magento' as store, currency, count(*), sum(grand_total)
    from {{ ref('stg_magento__orders') }}
    where is_revenue
    group by currency
),

staged_refunds as (
    select 'stripe' as store, currency, sum(amount) as refunds
    from {{ ref('stg_stripe__refunds') }}
    where is_refund
    group by currency

    union all

    select 'magento' as store, currency, sum(grand_total)
    from {{ ref('stg_magento__creditmemos') }}
    where is_refund
    group by currency
),

staged as (
    select
        store,
        currency,
        coalesce(staged_gross.orders, 0) as orders,
        coalesce(staged_gross.gross, 0) as gross,
        coalesce(staged_refunds.refunds, 0) as refunds
    from staged_gross
    full outer join staged_refunds using (store, currency)
),

mart as (
    select store, currency, sum(orders) as orders, sum(gross) as gross, sum(refunds) as refunds,
        sum(net) as net
    from {{ ref('revenue_daily') }}
    group by store, currency
)

select store, currency, staged.gross as staged_gross, mart.gross as mart_gross
from staged
full outer join mart using (store, currency)
where staged.orders is distinct from mart.orders
    or staged.gross is distinct from mart.gross
    or staged.refunds is distinct from mart.refunds
    or mart.net is distinct from staged.gross - staged.refunds

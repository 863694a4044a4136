-- The reporting currency and time zone the marts were built with, and when: one row.
select
    '{{ reporting_currency() }}' as reporting_currency,
    '{{ reporting_timezone() }}' as reporting_timezone,
    current_timestamp as built_at

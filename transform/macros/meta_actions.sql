{#-
    Value of the first action type in `action_types` that occurs in `actions` (a parsed list of
    {action_type, value} structs from Meta insights), or 0 when none occurs. Meta reports one purchase
    under several action types, so summing them would count it more than once.
-#}
{% macro meta_first_action_value(actions, action_types) -%}
    coalesce(
        {%- for action_type in action_types %}
        list_sum(list_transform(
            list_filter({{ actions }}, lambda action: action.action_type = '{{ action_type }}'),
            lambda action: action.value
        )),
        {%- endfor %}
        0
    )
{%- endmacro %}

"""选址规划: where the next activity rooms go under a budget (issue #6)."""

import streamlit as st

from liushou_geo import ui, ui_planner

user = ui.setup_page()
# The area planned comes from the user: a township user plans their township
# (there is nothing to choose), a county user their county.
county = ui_planner.scope(user, None if user.township else ui.county_selector())
area = ui_planner.area_title(county)

st.title(f"活动室选址规划 · {ui.md(area)}")
st.caption("在预算内选择新建活动室的村（社区），使住在活动室服务半径内的留守儿童最多；"
           "现有在用活动室保留不动。按整数规划精确求解（HiGHS），并与贪心算法比较。")

choice = ui_planner.inputs(county)
plan = ui_planner.solve(county, **choice)
ui_planner.summary(plan)

what = ui_planner.what_if(plan)
left, right = st.columns([3, 2])
with left:
    ui_planner.plan_map(plan, county, what)
with right:
    st.subheader("拟建活动室（按新增覆盖排序）")
    ui_planner.rooms_table(what.new_rooms if what else plan.new_rooms)
    ui_planner.download(plan, area)

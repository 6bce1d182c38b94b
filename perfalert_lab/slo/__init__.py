"""Service level objectives: their burn-rate alerts generated as sloth and the SRE workbook do,
replayed on history and judged by the workbook's numbers (SPEC 13).

>>> import perfalert_lab as pal
>>> slo = pal.SLO("availability", 99.9, "30d", {"errors": "sum(rate(errors_total[{{.window}}]))",
...                                              "total": "sum(rate(requests_total[{{.window}}]))"},
...               service="api", alert_name="APIBurnRate")
>>> [r.name for r in pal.slo.slo_rules(slo).alert_rules]
['APIBurnRate', 'APIBurnRate']
"""

from .analysis import SLO_STATS_COLUMNS, SLOResult, backtest_slo
from .generate import slo_rule_text, slo_rules
from .model import SLO, SLOTH_WINDOWS, WORKBOOK_WINDOWS, BurnRateWindow, burn_rate_windows
from .spec import load_slos, parse_slos
from .strategies import STRATEGIES, STRATEGY_COLUMNS, Strategy, compare_strategies, plot_strategies, strategy_rule_text
from .tuning import alert_windows_text, sweep_slo

__all__ = ["SLO", "SLOTH_WINDOWS", "SLO_STATS_COLUMNS", "STRATEGIES", "STRATEGY_COLUMNS", "WORKBOOK_WINDOWS",
           "BurnRateWindow", "SLOResult", "Strategy", "alert_windows_text", "backtest_slo", "burn_rate_windows",
           "compare_strategies", "load_slos", "parse_slos", "plot_strategies", "slo_rule_text", "slo_rules",
           "strategy_rule_text", "sweep_slo"]

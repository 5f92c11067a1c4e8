"""The agent: four roles (Observation → Planning → Execution → Learning) passing the artifacts
of ``schedcp.model``, two brains behind one interface (the offline planner, the default, and
Claude), and the loop that iterates them until budget, convergence or cancel.

    from schedcp.agent import AgentTools, OfflinePlanner, OptimizationLoop, BatchExecutor
    tools = AgentTools()
    result = OptimizationLoop(OfflinePlanner(tools=tools), tools, BatchExecutor(argv)).run()
"""

from .brain import Brain, BudgetExceeded, PlanContext
from .executors import BatchExecutor, Executor, PidExecutor
from .loop import LoopConfig, LoopResult, OptimizationLoop
from .offline import OfflinePlanner
from .tools import SPECS, AgentTools, ToolFailure

__all__ = [
    "SPECS", "AgentTools", "BatchExecutor", "Brain", "BudgetExceeded", "Executor", "LoopConfig",
    "LoopResult", "OfflinePlanner", "OptimizationLoop", "PidExecutor", "PlanContext",
    "ToolFailure",
]

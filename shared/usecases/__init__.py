"""Use-cases: one function per thing a trigger asks for, working only through ports."""

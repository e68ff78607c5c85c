"""nuwa_inf.eval"""

"""nuwa_inf.infer"""

#!/usr/bin/env python3
"""Generate the wxgrades demo data (roster and grades) — stdlib only, reproducible.

Writes, next to this script:
  sample_roster.csv        UTF-8, ~300 students; first row is the demo student 20220301 林小雨
  sample_grades.csv        UTF-8, every student's grades from their first term up to CURRENT_TERM
  sample_grades_gbk.csv    GBK, the rows of CURRENT_TERM only
  bad_grades_gbk.csv       GBK, ~20 rows of CURRENT_TERM, exactly one bad row (line 7: credit "abc")
  fixed_grades_gbk.csv     GBK, the same rows with line 7 fixed and one score of 20220301 changed

Formats follow SPEC.md "File formats". Run: python3 gen_demo.py [OUTDIR]
"""

import csv
import io
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
import os
import random
import re
import sys
from collections import defaultdict

SEED = 20250901
CURRENT = (2025, 1)  # 2025-2026-1, the newest term in the data
COHORTS = [2021, 2022, 2023, 2024]
# The brief asks for every term up to CURRENT for every cohort; set this to True to stop the
# 2021 cohort after its 8th semester (they would normally have graduated in June 2025).
STOP_AFTER_8_SEMESTERS = False

DEMO = {
    "学号": "20220301",
    "姓名": "林小雨",
    "身份证后六位": "12345X",
    "班级": "计科2201",
    "专业": "计算机科学与技术",
}

ROSTER_HEADER = ["学号", "姓名", "身份证后六位", "班级", "专业"]
GRADES_HEADER = ["学号", "姓名", "学期", "课程代码", "课程名称", "学分", "成绩", "考试性质"]

NUM, FIVE, PF = "num", "five", "pf"
FIVE_LEVELS = ["优秀", "良好", "中等", "及格", "不及格"]
KIND_ORDER = {"正常考试": 0, "": 0, "补考": 1, "重修": 2}

# ---------------------------------------------------------------------------------------------
# Majors: code in the student ID, class abbreviation, group (decides maths/English/physics),
# students per cohort and number of classes.
MAJORS = {
    "汉语言文学": dict(code="01", abbr="汉语言", group="arts", n=8, classes=1, male=0.25),
    "英语": dict(code="02", abbr="英语", group="en", n=8, classes=1, male=0.2),
    "计算机科学与技术": dict(code="03", abbr="计科", group="eng", n=14, classes=2, male=0.7),
    "软件工程": dict(code="04", abbr="软工", group="eng", n=12, classes=2, male=0.68),
    "数学与应用数学": dict(code="05", abbr="数学", group="math", n=8, classes=1, male=0.5),
    "电子信息工程": dict(code="06", abbr="电信", group="eng", n=8, classes=1, male=0.72),
    "会计学": dict(code="07", abbr="会计", group="biz", n=9, classes=2, male=0.3),
    "土木工程": dict(code="08", abbr="土木", group="eng", n=8, classes=1, male=0.8),
}

# ---------------------------------------------------------------------------------------------
# Course catalogue: code -> (name, credit, grading, difficulty offset)
CATALOGUE = {}


def C(code, name, credit, grading=NUM, diff=0.0):
    if code in CATALOGUE and CATALOGUE[code] != (name, credit, grading, diff):
        raise SystemExit(f"course {code} defined twice differently")
    CATALOGUE[code] = (name, credit, grading, diff)
    return code


# Common to everyone, by semester (1..8)
COMMON = {
    1: [C("MX1001", "思想道德与法治", 3, NUM, 4), C("PE1001", "体育(一)", 1, FIVE, 3),
        C("MT1001", "军事理论", 2, FIVE, 3), C("GE1001", "入学教育", 0.5, PF, 15)],
    2: [C("MX1002", "中国近现代史纲要", 3, NUM, 3), C("PE1002", "体育(二)", 1, FIVE, 3),
        C("MX1101", "形势与政策(一)", 0.5, FIVE, 5), C("GE1002", "大学生心理健康教育", 2, NUM, 5)],
    3: [C("MX2001", "马克思主义基本原理", 3, NUM, 1), C("PE2001", "体育(三)", 1, FIVE, 3),
        C("GE2001", "劳动教育", 1, PF, 15)],
    4: [C("MX2002", "毛泽东思想和中国特色社会主义理论体系概论", 3, NUM, 2),
        C("PE2002", "体育(四)", 1, FIVE, 3), C("MX1102", "形势与政策(二)", 0.5, FIVE, 5)],
    5: [C("MX3001", "习近平新时代中国特色社会主义思想概论", 3, NUM, 2),
        C("GE3001", "创新创业基础", 2, NUM, 4)],
    6: [C("MX1103", "形势与政策(三)", 0.5, FIVE, 5), C("GE3002", "大学生职业发展与就业指导", 1, PF, 15)],
    7: [C("MX1104", "形势与政策(四)", 0.5, FIVE, 5)],
    8: [],
}

# College English for every major except English
COLLEGE_ENGLISH = {
    1: [C("EN1001", "大学英语(一)", 3, NUM, -1)],
    2: [C("EN1002", "大学英语(二)", 3, NUM, -1)],
    3: [C("EN2001", "大学英语(三)", 2, NUM, 0)],
    4: [C("EN2002", "大学英语(四)", 2, NUM, 0)],
}

GROUP = {
    "eng": {
        1: [C("MA1101", "高等数学A(一)", 5, NUM, -5)],
        2: [C("MA1102", "高等数学A(二)", 5, NUM, -5), C("MA1201", "线性代数", 3, NUM, -3)],
        3: [C("MA2301", "概率论与数理统计", 3, NUM, -3), C("PH1001", "大学物理", 4, NUM, -4)],
    },
    "math": {
        3: [C("PH1001", "大学物理", 4, NUM, -4)],
    },
    "biz": {
        1: [C("MA1111", "高等数学B(一)", 4, NUM, -4)],
        2: [C("MA1112", "高等数学B(二)", 4, NUM, -4)],
        3: [C("MA1201", "线性代数", 3, NUM, -3)],
        4: [C("MA2301", "概率论与数理统计", 3, NUM, -3)],
    },
    "arts": {1: [C("CS1000", "大学计算机基础", 2, NUM, 2)]},
    "en": {1: [C("CS1000", "大学计算机基础", 2, NUM, 2)]},
}


def thesis(prefix, name="毕业设计(论文)"):
    return [C(prefix + "4901", "毕业实习", 4, FIVE, 6), C(prefix + "4902", name, 5, FIVE, 3)]


CURRICULUM = {
    "计算机科学与技术": {
        1: [C("CS1001", "程序设计基础", 4, NUM, -2), C("CS1002", "计算机导论", 2, NUM, 3)],
        2: [C("CS1003", "面向对象程序设计", 3, NUM, -1), C("CS1101", "离散数学", 4, NUM, -4)],
        3: [C("CS2001", "数据结构", 4, NUM, -3), C("CS2002", "数字逻辑", 3, NUM, -1)],
        4: [C("CS2003", "计算机组成原理", 4, NUM, -3), C("CS2004", "算法设计与分析", 3, NUM, -3),
            C("CS2005", "Java程序设计", 3, NUM, 1)],
        5: [C("CS3001", "操作系统", 4, NUM, -2), C("CS3002", "数据库系统", 3.5, NUM, 0),
            C("CS3003", "编译原理", 3, NUM, -4)],
        6: [C("CS3004", "计算机网络", 3.5, NUM, -1), C("CS3005", "软件工程", 3, NUM, 1),
            C("CS3006", "人工智能导论", 2.5, NUM, 0)],
        7: [C("CS4001", "机器学习", 2.5, NUM, -1), C("CS4002", "分布式系统", 2, NUM, 0),
            C("CS4003", "信息安全", 2, NUM, 1), C("CS4004", "专业英语", 2, NUM, 2)],
        8: thesis("CS"),
    },
    "软件工程": {
        1: [C("CS1001", "程序设计基础", 4, NUM, -2), C("SE1002", "软件工程导论", 2, NUM, 3)],
        2: [C("CS1101", "离散数学", 4, NUM, -4), C("SE1003", "Python程序设计", 2.5, NUM, 2)],
        3: [C("CS2001", "数据结构", 4, NUM, -3), C("SE2001", "面向对象分析与设计", 3, NUM, 0)],
        4: [C("CS2003", "计算机组成原理", 4, NUM, -3), C("SE2002", "Web前端开发", 2.5, NUM, 2),
            C("CS3002", "数据库系统", 3.5, NUM, 0)],
        5: [C("CS3001", "操作系统", 4, NUM, -2), C("SE3001", "软件需求工程", 2.5, NUM, 1),
            C("SE3002", "软件测试", 3, NUM, 1)],
        6: [C("CS3004", "计算机网络", 3.5, NUM, -1), C("SE3003", "软件项目管理", 2, NUM, 2),
            C("SE3004", "软件体系结构", 3, NUM, -1)],
        7: [C("SE4001", "移动应用开发", 2.5, NUM, 2), C("SE4002", "云计算技术", 2, NUM, 1),
            C("SE4003", "DevOps实践", 2, NUM, 2)],
        8: thesis("SE"),
    },
    "电子信息工程": {
        1: [C("CS1001", "程序设计基础", 4, NUM, -2), C("EE1001", "电子信息工程导论", 1, NUM, 4)],
        2: [C("EE1002", "电路分析基础", 4, NUM, -4)],
        3: [C("EE2001", "模拟电子技术", 4, NUM, -5), C("EE2002", "信号与系统", 4, NUM, -4)],
        4: [C("EE2003", "数字电子技术", 4, NUM, -2), C("EE2004", "复变函数与积分变换", 2.5, NUM, -3),
            C("PH1002", "大学物理实验", 1.5, NUM, 4)],
        5: [C("EE3001", "通信原理", 4, NUM, -3), C("EE3002", "微机原理与接口技术", 3.5, NUM, -1),
            C("EE3003", "电磁场与电磁波", 3, NUM, -5)],
        6: [C("EE3004", "数字信号处理", 3.5, NUM, -2), C("EE3005", "嵌入式系统", 3, NUM, 0),
            C("EE3006", "高频电子线路", 3, NUM, -2)],
        7: [C("EE4001", "无线通信", 2.5, NUM, 0), C("EE4002", "图像处理", 2.5, NUM, 1),
            C("EE4003", "FPGA设计", 2, NUM, 0)],
        8: thesis("EE"),
    },
    "土木工程": {
        1: [C("CE1001", "土木工程概论", 1.5, NUM, 4), C("CE1002", "工程制图", 3, NUM, 0)],
        2: [C("CE1003", "理论力学", 4, NUM, -4)],
        3: [C("CE2001", "材料力学", 4, NUM, -4), C("CE2002", "土木工程材料", 2.5, NUM, 1)],
        4: [C("CE2003", "结构力学", 4, NUM, -5), C("CE2004", "工程测量", 2.5, NUM, 2),
            C("CE2005", "土力学", 3, NUM, -2)],
        5: [C("CE3001", "混凝土结构设计原理", 4, NUM, -2), C("CE3002", "钢结构", 3, NUM, -1),
            C("CE3003", "基础工程", 2.5, NUM, 0)],
        6: [C("CE3004", "建筑施工技术", 3, NUM, 1), C("CE3005", "工程项目管理", 2, NUM, 2),
            C("CE3006", "房屋建筑学", 2.5, NUM, 1)],
        7: [C("CE4001", "桥梁工程", 3, NUM, -1), C("CE4002", "工程概预算", 2, NUM, 1),
            C("CE4003", "建设法规", 1.5, NUM, 3)],
        8: thesis("CE"),
    },
    "数学与应用数学": {
        1: [C("MA1001", "数学分析(一)", 5, NUM, -6), C("MA1003", "高等代数(一)", 4, NUM, -5),
            C("MA1005", "解析几何", 3, NUM, -2)],
        2: [C("MA1002", "数学分析(二)", 5, NUM, -6), C("MA1004", "高等代数(二)", 4, NUM, -5),
            C("CS1001", "程序设计基础", 4, NUM, -2)],
        3: [C("MA2001", "数学分析(三)", 4, NUM, -5), C("MA2002", "常微分方程", 3, NUM, -3)],
        4: [C("MA2003", "概率论", 4, NUM, -3), C("MA2004", "复变函数", 3, NUM, -3)],
        5: [C("MA3001", "实变函数", 3, NUM, -6), C("MA3002", "数值分析", 3, NUM, -1),
            C("MA3003", "数理统计", 3, NUM, -2)],
        6: [C("MA3004", "抽象代数", 3, NUM, -5), C("MA3005", "泛函分析", 3, NUM, -5),
            C("MA3006", "数学建模", 2, NUM, 3)],
        7: [C("MA4001", "微分几何", 3, NUM, -3), C("MA4002", "运筹学", 3, NUM, 0),
            C("MA4003", "拓扑学", 3, NUM, -4)],
        8: thesis("MA", "毕业论文"),
    },
    "汉语言文学": {
        1: [C("CH1001", "现代汉语(一)", 3, NUM, 0), C("CH1002", "中国古代文学(一)", 3, NUM, 1),
            C("CH1003", "文学概论", 3, NUM, -1)],
        2: [C("CH1004", "现代汉语(二)", 3, NUM, 0), C("CH1005", "中国古代文学(二)", 3, NUM, 1),
            C("CH1006", "古代汉语(一)", 3, NUM, -3)],
        3: [C("CH2001", "古代汉语(二)", 3, NUM, -3), C("CH2002", "中国现代文学", 3, NUM, 2),
            C("CH2003", "外国文学(一)", 3, NUM, 1), C("CH2004", "语言学概论", 2.5, NUM, -2)],
        4: [C("CH2005", "中国当代文学", 3, NUM, 2), C("CH2006", "外国文学(二)", 3, NUM, 1),
            C("CH2007", "写作", 2, NUM, 3), C("CH2008", "美学", 2, NUM, 0)],
        5: [C("CH3001", "中国文学批评史", 3, NUM, -1), C("CH3002", "比较文学", 2.5, NUM, 1),
            C("CH3003", "训诂学", 2, NUM, -3), C("CH3004", "中国古代文论", 2.5, NUM, -1)],
        6: [C("CH3005", "文字学", 2, NUM, -2), C("CH3006", "民间文学", 2, NUM, 3),
            C("CH3007", "秘书学", 2, NUM, 3), C("CH3008", "汉语方言学", 2, NUM, 0)],
        7: [C("CH4001", "语文课程与教学论", 2, NUM, 2), C("CH4002", "《红楼梦》研究", 2, NUM, 2),
            C("CH4003", "鲁迅研究", 2, NUM, 2)],
        8: thesis("CH", "毕业论文"),
    },
    "英语": {
        1: [C("EN1101", "综合英语(一)", 4, NUM, 0), C("EN1102", "英语听力(一)", 2, NUM, -1),
            C("EN1103", "英语口语(一)", 2, NUM, 2)],
        2: [C("EN1104", "综合英语(二)", 4, NUM, 0), C("EN1105", "英语听力(二)", 2, NUM, -1),
            C("EN1106", "英语口语(二)", 2, NUM, 2), C("EN1107", "英语语音", 1.5, NUM, 3)],
        3: [C("EN2101", "综合英语(三)", 4, NUM, -1), C("EN2102", "英语阅读", 2, NUM, 1),
            C("EN2103", "英语写作(一)", 2, NUM, -1), C("EN2104", "第二外语(日语)(一)", 3, NUM, -2)],
        4: [C("EN2105", "综合英语(四)", 4, NUM, -1), C("EN2106", "英语写作(二)", 2, NUM, -1),
            C("EN2107", "第二外语(日语)(二)", 3, NUM, -2), C("EN2108", "英美文学选读", 2, NUM, 0)],
        5: [C("EN3101", "高级英语(一)", 3, NUM, -2), C("EN3102", "英汉翻译", 2, NUM, 0),
            C("EN3103", "语言学导论", 2, NUM, -2), C("EN3104", "英国文学", 2.5, NUM, 0)],
        6: [C("EN3105", "高级英语(二)", 3, NUM, -2), C("EN3106", "汉英翻译", 2, NUM, 0),
            C("EN3107", "美国文学", 2.5, NUM, 0), C("EN3108", "口译基础", 2, NUM, -1)],
        7: [C("EN4101", "学术论文写作", 2, NUM, 1), C("EN4102", "跨文化交际", 2, NUM, 3),
            C("EN4103", "商务英语", 2, NUM, 2)],
        8: thesis("EN", "毕业论文"),
    },
    "会计学": {
        1: [C("AC1001", "会计学原理", 3, NUM, -1), C("AC1002", "管理学", 3, NUM, 2)],
        2: [C("AC1003", "微观经济学", 3, NUM, -2), C("AC1004", "经济学基础写作", 1.5, NUM, 4)],
        3: [C("AC2001", "中级财务会计(一)", 4, NUM, -3), C("AC2002", "宏观经济学", 3, NUM, -1)],
        4: [C("AC2003", "中级财务会计(二)", 3, NUM, -3), C("AC2004", "统计学", 3, NUM, -2),
            C("AC2005", "经济法", 2.5, NUM, 1)],
        5: [C("AC3001", "成本会计", 3, NUM, -2), C("AC3002", "财务管理", 3.5, NUM, -1),
            C("AC3003", "税法", 3, NUM, -1)],
        6: [C("AC3004", "审计学", 3.5, NUM, -2), C("AC3005", "管理会计", 3, NUM, -1),
            C("AC3006", "会计信息系统", 2.5, NUM, 2)],
        7: [C("AC4001", "高级财务会计", 3, NUM, -3), C("AC4002", "财务报表分析", 2.5, NUM, 0),
            C("AC4003", "内部控制", 2, NUM, 1)],
        8: thesis("AC", "毕业论文"),
    },
}

# Summer (term N = 3) practice courses, by major and study year (1 = after the first year)
SUMMER = {
    "计算机科学与技术": {1: [C("CS1901", "程序设计实训", 2, FIVE, 5)],
                   2: [C("CS2901", "数据结构课程设计", 1.5, NUM, 4)],
                   3: [C("CS3901", "专业实习", 2, FIVE, 6), C("CS3902", "项目实践", 1, PF, 15)]},
    "软件工程": {1: [C("SE1901", "程序设计实训", 2, FIVE, 5)],
             2: [C("SE2901", "软件项目实训", 2, NUM, 4), C("SE2902", "团队开发实践", 1, PF, 15)],
             3: [C("SE3901", "企业实习", 3, FIVE, 6)]},
    "电子信息工程": {2: [C("EE2901", "电子工艺实习", 1.5, FIVE, 5)],
               3: [C("EE3901", "专业实习", 2, FIVE, 6)]},
    "土木工程": {1: [C("CE1901", "认识实习", 1, PF, 15)],
             2: [C("CE2901", "工程测量实习", 2, FIVE, 5)],
             3: [C("CE3901", "生产实习", 2, FIVE, 6)]},
    "会计学": {3: [C("AC3901", "会计模拟实训", 2, NUM, 5)]},
    "汉语言文学": {2: [C("CH2901", "社会实践", 1, PF, 15)]},
}

GENERAL_ELECTIVES = [
    C("GE5001", "音乐鉴赏", 1, FIVE, 6), C("GE5002", "中国传统文化概论", 2, NUM, 4),
    C("GE5003", "影视艺术赏析", 1.5, FIVE, 6), C("GE5004", "创业管理", 1, NUM, 4),
    C("GE5005", "环境与可持续发展", 1.5, NUM, 4), C("GE5006", "科技论文写作", 1, NUM, 3),
    C("GE5007", "逻辑学导论", 2, NUM, 1), C("GE5008", "书法艺术", 1, FIVE, 6),
    C("GE5009", "西方哲学史", 2, NUM, 1), C("GE5010", "摄影基础", 1, PF, 15),
    C("GE5011", "心理学与生活", 1.5, NUM, 5), C("GE5012", "公共演讲", 1, FIVE, 5),
    C("GE5013", "经济学原理", 2, NUM, 2), C("GE5014", "数据分析与可视化", 2, NUM, 2),
    C("GE5015", "急救与安全教育", 0.5, PF, 15), C("GE5016", "茶文化", 1, PF, 15),
]

MAJOR_ELECTIVES = {
    "计算机科学与技术": [C("CS5001", "Linux系统编程", 2, NUM, 1), C("CS5002", "Python数据分析", 2, NUM, 2),
                   C("CS5003", "计算机图形学", 2.5, NUM, -1), C("CS5004", "自然语言处理", 2, NUM, 0),
                   C("CS5005", "区块链技术", 1.5, NUM, 2), C("CS5006", "并行计算", 2, NUM, -1),
                   C("CS5007", "Web开发技术", 2.5, NUM, 3), C("CS5008", "数字图像处理", 2, NUM, 0)],
    "软件工程": [C("CS5001", "Linux系统编程", 2, NUM, 1), C("CS5002", "Python数据分析", 2, NUM, 2),
             C("SE5001", "用户体验设计", 2, NUM, 3), C("SE5002", "微服务架构", 2, NUM, 0),
             C("SE5003", "游戏开发", 2.5, NUM, 2), C("SE5004", "软件安全", 2, NUM, 0),
             C("SE5005", "敏捷开发方法", 1.5, NUM, 3), C("CS5004", "自然语言处理", 2, NUM, 0)],
    "电子信息工程": [C("EE5001", "单片机原理", 2.5, NUM, 0), C("EE5002", "光纤通信", 2, NUM, 0),
               C("EE5003", "物联网技术", 2, NUM, 2), C("EE5004", "雷达原理", 2, NUM, -2),
               C("EE5005", "MATLAB仿真", 1.5, NUM, 3), C("EE5006", "天线原理", 2, NUM, -1),
               C("CS5001", "Linux系统编程", 2, NUM, 1)],
    "土木工程": [C("CE5001", "BIM技术应用", 2, NUM, 3), C("CE5002", "隧道工程", 2, NUM, 0),
             C("CE5003", "道路勘测设计", 2.5, NUM, 0), C("CE5004", "高层建筑结构", 2, NUM, -1),
             C("CE5005", "建筑结构抗震设计", 2, NUM, -2), C("CE5006", "工程地质", 2, NUM, 1)],
    "数学与应用数学": [C("MA5001", "数学史", 1.5, NUM, 4), C("MA5002", "组合数学", 2, NUM, -2),
                C("MA5003", "密码学基础", 2, NUM, -1), C("MA5004", "金融数学", 2, NUM, 0),
                C("MA5005", "图论", 2, NUM, -1), C("MA5006", "偏微分方程", 3, NUM, -4)],
    "汉语言文学": [C("CH5001", "唐诗宋词鉴赏", 2, NUM, 3), C("CH5002", "现代汉语语法研究", 2, NUM, 0),
              C("CH5003", "新闻写作", 2, NUM, 2), C("CH5004", "影视文学", 2, NUM, 3),
              C("CH5005", "中国文化史", 2, NUM, 1), C("CH5006", "对外汉语教学", 2, NUM, 1)],
    "英语": [C("EN5001", "英语演讲与辩论", 2, NUM, 1), C("EN5002", "圣经与西方文化", 1.5, NUM, 2),
           C("EN5003", "影视英语", 1.5, NUM, 4), C("EN5004", "英语国家概况", 2, NUM, 2),
           C("EN5005", "语料库语言学", 2, NUM, -1), C("EN5006", "第二外语(日语)(三)", 3, NUM, -2)],
    "会计学": [C("AC5001", "证券投资学", 2, NUM, 0), C("AC5002", "国际会计", 2, NUM, -1),
            C("AC5003", "资产评估", 2, NUM, 0), C("AC5004", "Excel在财务中的应用", 1.5, NUM, 4),
            C("AC5005", "金融学", 3, NUM, -1), C("AC5006", "企业战略管理", 2, NUM, 2)],
}

# ---------------------------------------------------------------------------------------------
# Names
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
                "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
                "龚邵万钱严覃武戴莫孔向汤")
COMPOUND_SURNAMES = ["欧阳", "司马", "上官", "诸葛", "慕容"]

MALE_CHARS = list("伟强磊军洋勇杰涛明超浩鹏宇轩博文俊晨昊然辰睿泽航凯峰嘉志诚天逸远铭阳宸皓哲宁翔飞斌亮健毅鑫"
                  "建华国平东海波辉刚鸣远子一梓煜瑞霖彬豪晗铭")
FEMALE_CHARS = list("芳娜敏静丽艳婷雪琳欣怡悦佳颖萱涵雨梦琪薇婧璐倩晶瑶诗语馨彤妍钰晓慧洁蕾露晴玥可安心若"
                    "思雅淑文君兰月清菲蓉雯舒")
MALE_GIVEN = ["浩然", "宇轩", "子轩", "俊杰", "志强", "建华", "晓东", "文博", "天宇", "明轩", "思远", "一鸣",
              "子墨", "沐阳", "梓豪", "博文", "嘉懿", "昊天", "振宇", "家豪", "国栋", "海涛", "鹏飞", "宏伟",
              "立新", "晨阳", "泽宇", "皓轩", "奕辰", "承泽", "宇航", "瑞霖"]
FEMALE_GIVEN = ["子涵", "梓萱", "欣怡", "雨桐", "一诺", "嘉怡", "佳琪", "梦瑶", "诗涵", "若曦", "紫萱", "晨曦",
                "思雨", "可馨", "雅婷", "婷婷", "晶晶", "欢欢", "丽娟", "海燕", "秀英", "文静", "语嫣", "心怡",
                "佳怡", "梦琪", "雨萱", "依依", "书瑶", "安琪", "静怡", "晓雪", "怡然", "诗雨"]

AREA_CODES = ["110105", "120104", "130102", "140105", "210103", "220102", "310115", "320106", "320583",
              "330106", "330302", "340104", "350203", "360102", "370203", "370602", "410105", "420111",
              "430104", "440106", "440305", "450103", "500103", "510107", "520102", "530102", "610113",
              "620102", "640104", "360782", "421182", "431121", "511602", "412726"]

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"


def id_card(rng, birth_year, male):
    """A well-formed 18-character resident ID (area, birth date, sequence, ISO 7064 check)."""
    area = rng.choice(AREA_CODES)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    seq = rng.randint(0, 99) * 10 + rng.choice([1, 3, 5, 7, 9] if male else [0, 2, 4, 6, 8])
    body = f"{area}{birth_year:04d}{month:02d}{day:02d}{seq:03d}"
    check = ID_CHECK[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS)) % 11]
    return body + check


SURNAME_WEIGHTS = [1.0 / (i + 1) ** 0.55 for i in range(len(SURNAMES))]


def make_name(rng, male):
    if rng.random() < 0.015:
        surname = rng.choice(COMPOUND_SURNAMES)
    else:
        surname = rng.choices(SURNAMES, weights=SURNAME_WEIGHTS)[0]
    chars, given = (MALE_CHARS, MALE_GIVEN) if male else (FEMALE_CHARS, FEMALE_GIVEN)
    r = rng.random()
    if r < 0.22:
        g = rng.choice(chars)  # single-character given name
    elif r < 0.55:
        g = rng.choice(given)  # popular two-character given name
    else:
        a = rng.choice(chars)
        b = rng.choice(chars)
        while b == a and rng.random() < 0.7:
            b = rng.choice(chars)
        g = a + b
    if len(surname) == 2 and len(g) == 2 and rng.random() < 0.5:
        g = g[0]
    return surname + g


# ---------------------------------------------------------------------------------------------
# Terms
def term_str(y, n):
    return f"{y}-{y + 1}-{n}"


def term_key(t):
    m = re.fullmatch(r"(\d{4})-(\d{4})-([123])", t)
    if not m:
        raise ValueError(t)
    return (int(m.group(1)), int(m.group(3)))


def semester_term(cohort, sem):
    return (cohort + (sem - 1) // 2, 1 if sem % 2 else 2)


def student_terms(cohort, major):
    """[(term_key, 'regular', sem) | (term_key, 'summer', year)] in order, up to CURRENT."""
    out = []
    sem = 1
    while True:
        k = semester_term(cohort, sem)
        if k > CURRENT or (STOP_AFTER_8_SEMESTERS and sem > 8):
            break
        out.append((k, "regular", sem))
        if sem % 2 == 0:
            year = sem // 2
            sk = (cohort + year - 1, 3)
            if sk < CURRENT and year in SUMMER.get(major, {}):
                out.append((sk, "summer", year))
        sem += 1
    return out


# ---------------------------------------------------------------------------------------------
# Scores
def fmt_num(x):
    if abs(x - round(x)) < 1e-9:
        return str(int(round(x)))
    return f"{x:.1f}"


def numeric_score(rng, latent):
    if latent > 94:  # full marks are rare: squeeze the top of the distribution
        latent = 94 + (latent - 94) * 0.35
    x = max(0, min(100, int(round(latent))))
    if rng.random() < 0.15 and 0 < x < 100:
        d = 5 if rng.random() < 0.6 else rng.randint(1, 9)
        x = x - 1 + d / 10 if rng.random() < 0.5 else x + d / 10
        x = max(0.0, min(100.0, x))
    return x


def five_from(latent):
    if latent >= 90:
        return "优秀"
    if latent >= 80:
        return "良好"
    if latent >= 70:
        return "中等"
    if latent >= 60:
        return "及格"
    return "不及格"


def grade_point(score):
    if score in ("优秀", "良好", "中等", "及格", "不及格"):
        return {"优秀": 4.0, "良好": 3.0, "中等": 2.0, "及格": 1.0, "不及格": 0.0}[score]
    try:
        x = float(score)
    except ValueError:
        return None
    for lo, gp in ((90, 4.0), (85, 3.7), (82, 3.3), (78, 3.0), (75, 2.7), (72, 2.3), (68, 2.0),
                   (64, 1.5), (60, 1.0)):
        if x >= lo:
            return gp
    return 0.0


def passed(score):
    if score in ("优秀", "良好", "中等", "及格", "合格"):
        return True
    try:
        return float(score) >= 60
    except ValueError:
        return False


def is_failed(score):
    if score in ("不及格", "不合格", "缺考", "作弊"):
        return True
    try:
        return float(score) < 60
    except ValueError:
        return False


def gpa(rows):
    """rows: dicts with 课程代码, 学分, 成绩 — best attempt per course, counted once."""
    best = {}
    for r in rows:
        gp = grade_point(r["成绩"])
        if gp is None:
            continue
        code = r["课程代码"]
        if code not in best or gp > best[code][0]:
            best[code] = (gp, Fraction(r["学分"]))
    total = sum(c for _, c in best.values())
    if total == 0:
        return None
    # exact arithmetic: grade points have one decimal, credits at most two
    return sum(Fraction(str(g)) * c for g, c in best.values()) / total


def fmt_gpa(g):
    """Two decimals, half away from zero, on the exact value (SPEC); '—' when no graded course."""
    if g is None:
        return "—"
    q = Decimal(g.numerator) / Decimal(g.denominator)
    return str(q.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def credits_earned(rows):
    done = {}
    for r in rows:
        if passed(r["成绩"]):
            done[r["课程代码"]] = float(r["学分"])
    return sum(done.values())


# ---------------------------------------------------------------------------------------------
def row(stu, term, code, score, kind="正常考试"):
    name, credit, _, _ = CATALOGUE[code]
    return {"学号": stu["学号"], "姓名": stu["姓名"], "学期": term, "课程代码": code,
            "课程名称": name, "学分": fmt_num(credit), "成绩": score, "考试性质": kind}


def term_courses(rng, major, sem, taken, electives_left):
    group = MAJORS[major]["group"]
    codes = list(COMMON.get(sem, []))
    if major != "英语":
        codes += COLLEGE_ENGLISH.get(sem, [])
    codes += GROUP[group].get(sem, [])
    codes += CURRICULUM[major].get(sem, [])
    codes = [c for c in codes if c not in taken]
    if len(codes) > 9:
        raise SystemExit(f"{major} semester {sem}: {len(codes)} required courses")
    target = rng.randint(6, 9) if sem <= 4 else rng.choices([6, 7, 8, 9], [3, 4, 3, 1])[0]
    if sem > 8:  # a 9th semester (2021 cohort, see STOP_AFTER_8_SEMESTERS): electives only
        target = rng.randint(6, 7)
    while len(codes) < target and electives_left:
        pool = [c for c in electives_left if sem >= 5 or c.startswith("GE")] or electives_left
        pick = rng.choice(pool)
        electives_left.remove(pick)
        if pick not in taken and pick not in codes:
            codes.append(pick)
    return codes


def later_regular_term(rng, after, cohort, major):
    options = [k for k, what, _ in student_terms(cohort, major) if what == "regular" and k > after]
    if not options:
        return None
    return rng.choice(options[:3])


def gen_student_grades(rng, stu, ability):
    """Grades for an ordinary student: list of (sort key, row)."""
    cohort, major = stu["cohort"], stu["专业"]
    out = []
    taken = set()
    electives_left = list(GENERAL_ELECTIVES) + list(MAJOR_ELECTIVES[major])
    for k, what, n in student_terms(cohort, major):
        term = term_str(*k)
        if what == "regular":
            codes = term_courses(rng, major, n, taken, electives_left)
        else:
            codes = list(SUMMER[major][n])
        is_current = k == CURRENT
        for idx, code in enumerate(codes):
            taken.add(code)
            name, credit, grading, diff = CATALOGUE[code]
            latent = 78 + ability + diff + rng.gauss(0, 7.5)
            kind = "正常考试" if rng.random() > 0.02 else ""
            status = None
            if grading != PF:
                u = rng.random()
                if u < 0.0003:
                    status = "取消"
                elif u < 0.0043:
                    status = "缺考"
                elif u < 0.0073:
                    status = "缓考"
            if status:
                score = status
            elif grading == NUM:
                score = fmt_num(numeric_score(rng, latent))
            elif grading == FIVE:
                score = five_from(latent)
            else:
                score = "不合格" if rng.random() < 0.006 else "合格"
            out.append(((k, idx, 0), row(stu, term, code, score, kind)))

            # follow-ups
            failed = is_failed(score)
            makeup = None
            if status == "缓考":
                if not is_current and rng.random() < 0.85:
                    l2 = 76 + ability + diff + rng.gauss(0, 7)
                    makeup = fmt_num(numeric_score(rng, l2)) if grading == NUM else five_from(l2)
            elif failed and not is_current:
                want = 0.7 if status is None else 0.5
                if rng.random() < want:
                    if grading == NUM:
                        if rng.random() < 0.85:
                            makeup = str(rng.choice([60, 60, 61, 62, 63, 64, 65, 66, 68, 70, 72, 75]))
                        else:
                            makeup = str(rng.randint(35, 59))
                    elif grading == FIVE:
                        makeup = rng.choices(["及格", "中等", "不及格"], [8, 1, 1])[0]
                    else:
                        makeup = "合格"
            if makeup is not None:
                out.append(((k, idx, 1), row(stu, term, code, makeup, "补考")))
            still_failed = failed and (makeup is None or is_failed(makeup))
            if still_failed and rng.random() < 0.45:
                lk = later_regular_term(rng, k, cohort, major)
                if lk is not None:
                    l3 = 74 + ability + diff / 2 + rng.gauss(0, 7)
                    if grading == NUM:
                        s3 = fmt_num(numeric_score(rng, max(l3, 45)))
                    elif grading == FIVE:
                        s3 = five_from(max(l3, 60))
                    else:
                        s3 = "合格"
                    out.append(((lk, 100 + idx, 2), row(stu, term_str(*lk), code, s3, "重修")))
    return out


def gen_demo_grades(seed):
    """The demo student's transcript, scripted around a seeded random draw."""
    rng = random.Random(seed)
    stu = {"学号": DEMO["学号"], "姓名": DEMO["姓名"], "cohort": 2022, "专业": DEMO["专业"]}
    major = stu["专业"]
    out = []
    taken = set()
    electives_left = list(GENERAL_ELECTIVES) + list(MAJOR_ELECTIVES[major])
    for k, what, n in student_terms(2022, major):
        term = term_str(*k)
        codes = term_courses(rng, major, n, taken, electives_left) if what == "regular" \
            else list(SUMMER[major][n])
        for idx, code in enumerate(codes):
            taken.add(code)
            name, credit, grading, diff = CATALOGUE[code]
            latent = 84 + diff / 2 + rng.gauss(0, 5.5)
            if grading == NUM:
                score = fmt_num(numeric_score(rng, max(66, min(97, latent))))
            elif grading == FIVE:
                score = "良好" if latent >= 82 else "中等"
            else:
                score = "合格"
            out.append(((k, idx, 0), row(stu, term, code, score)))
    by = {(r["学期"], r["课程代码"]): i for i, (_, r) in enumerate(out)}

    def setscore(term, code, score):
        out[by[(term, code)]][1]["成绩"] = score

    # scripted events
    setscore("2022-2023-1", "MT1001", "优秀")        # 军事理论 优秀 (her only 优秀)
    setscore("2022-2023-1", "GE1001", "合格")        # 入学教育 合格
    setscore("2022-2023-2", "CS1101", "52")          # 离散数学 failed, no 补考 ...
    k4 = (2023, 2)
    out.append(((k4, 100, 2), row(stu, "2023-2024-2", "CS1101", "81", "重修")))  # ... 重修 later
    setscore("2023-2024-1", "PH1001", "56")          # 大学物理 failed ...
    i = by[("2023-2024-1", "PH1001")]
    out.append(((out[i][0][0], out[i][0][1], 1), row(stu, "2023-2024-1", "PH1001", "72", "补考")))
    setscore("2025-2026-1", "CS4003", "缓考")        # 信息安全 deferred in the current term
    setscore("2025-2026-1", "CS4001", "84")          # 机器学习: the score the fixed file changes
    return out


def demo_ok(rows):
    g = gpa(rows)
    youxiu = sum(1 for r in rows if r["成绩"] == "优秀")
    return g is not None and 3.30 <= g <= 3.45 and youxiu == 1


# ---------------------------------------------------------------------------------------------
def build(rng):
    # roster
    students = []
    used_ids = {DEMO["学号"]}
    names = {DEMO["姓名"]}
    for cohort in COHORTS:
        for major, m in MAJORS.items():
            per_class = [m["n"] // m["classes"] + (1 if i < m["n"] % m["classes"] else 0)
                         for i in range(m["classes"])]
            for ci, cnt in enumerate(per_class):
                lo, hi = (1, 35) if ci == 0 else (36, 70)
                cls = f"{m['abbr']}{cohort % 100:02d}{ci + 1:02d}"
                pool = [q for q in range(lo, hi + 1) if f"{cohort}{m['code']}{q:02d}" not in used_ids]
                if cls == DEMO["班级"]:
                    cnt -= 1  # the demo student takes one seat of 计科2201
                for seq in sorted(rng.sample(pool, cnt)):
                    sid = f"{cohort}{m['code']}{seq:02d}"
                    used_ids.add(sid)
                    male = rng.random() < m["male"]
                    while True:
                        nm = make_name(rng, male)
                        if nm not in names or rng.random() < 0.03:
                            break
                    names.add(nm)
                    birth = cohort - 18 - (1 if rng.random() < 0.25 else 0) + (
                        1 if rng.random() < 0.05 else 0)
                    idc = id_card(rng, birth, male)
                    students.append({
                        "学号": sid, "姓名": nm, "身份证后六位": idc[-6:], "班级": cls,
                        "专业": major, "cohort": cohort,
                    })
    students.sort(key=lambda s: s["学号"])
    demo = dict(DEMO, cohort=2022)
    students.insert(0, demo)

    # grades
    all_rows = []
    for s in students:
        if s["学号"] == DEMO["学号"]:
            for dseed in range(SEED, SEED + 5000):
                drows = gen_demo_grades(dseed)
                if demo_ok([r for _, r in drows]):
                    break
            else:
                raise SystemExit("no demo transcript with the wanted GPA")
            rows = drows
        else:
            ability = rng.gauss(0, 6)
            rows = gen_student_grades(rng, s, ability)
        rows.sort(key=lambda kr: kr[0])
        all_rows.extend(r for _, r in rows)
    return students, all_rows


def write_csv(path, header, rows, encoding):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    with open(path, "wb") as f:
        f.write(buf.getvalue().encode(encoding))


def read_csv(path, encoding):
    with open(path, "rb") as f:
        raw = f.read()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise SystemExit(f"{path}: unexpected BOM")
    text = raw.decode(encoding)
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------------------------------------
VALID_SCORES = set(FIVE_LEVELS) | {"合格", "不合格", "缺考", "缓考", "作弊", "取消"}


def validate_grades(rows, roster, label, allow_bad_lines=()):
    errors = []
    keys = set()
    catalogue_seen = {}
    for i, r in enumerate(rows):
        line = i + 2
        bad = []
        if r["学号"] not in roster:
            bad.append("unknown student")
        elif r["姓名"] != roster[r["学号"]]["姓名"]:
            bad.append("name mismatch")
        m = re.fullmatch(r"(\d{4})-(\d{4})-([123])", r["学期"])
        if not m or int(m.group(2)) != int(m.group(1)) + 1:
            bad.append("term")
        try:
            c = float(r["学分"])
            if not (0 < c <= 30) or not re.fullmatch(r"\d+(\.\d{1,2})?", r["学分"]):
                bad.append("credit range")
        except ValueError:
            bad.append("credit not a number")
        s = r["成绩"]
        if s not in VALID_SCORES:
            if not re.fullmatch(r"\d{1,3}(\.\d{1,2})?", s) or not 0 <= float(s) <= 100:
                bad.append("score")
        if r["考试性质"] not in ("", "正常考试", "补考", "重修"):
            bad.append("kind")
        key = (r["学号"], r["学期"], r["课程代码"], r["考试性质"] or "正常考试")
        if key in keys:
            bad.append("duplicate key")
        keys.add(key)
        prev = catalogue_seen.setdefault(r["课程代码"], (r["课程名称"], r["学分"]))
        if prev != (r["课程名称"], r["学分"]):
            bad.append("course code with two names/credits")
        if bad:
            errors.append((line, bad))
    unexpected = [e for e in errors if e[0] not in allow_bad_lines]
    if unexpected:
        raise SystemExit(f"{label}: invalid rows {unexpected[:10]}")
    return errors


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(SEED)
    students, grades = build(rng)

    # everything must survive GBK (the GBK files and real-world Excel exports)
    for s in students:
        "".join(s[h] for h in ROSTER_HEADER).encode("gbk")
    for r in grades:
        "".join(r[h] for h in GRADES_HEADER).encode("gbk")

    p = lambda n: os.path.join(outdir, n)  # noqa: E731
    write_csv(p("sample_roster.csv"), ROSTER_HEADER, students, "utf-8")
    write_csv(p("sample_grades.csv"), GRADES_HEADER, grades, "utf-8")
    cur = term_str(*CURRENT)
    cur_rows = [r for r in grades if r["学期"] == cur]
    write_csv(p("sample_grades_gbk.csv"), GRADES_HEADER, cur_rows, "gbk")

    # bad/fixed files: two ordinary students' current-term rows, then the demo student's
    demo_cur = [dict(r) for r in cur_rows if r["学号"] == DEMO["学号"]]
    others = [r for r in cur_rows if r["学号"] != DEMO["学号"]]
    by_sid = defaultdict(list)
    for r in others:
        by_sid[r["学号"]].append(r)
    pick_rng = random.Random(SEED + 1)
    candidates = [sid for sid, rs in by_sid.items()
                  if any(r["学分"] == "3" for r in rs) and all(r["考试性质"] == "正常考试" for r in rs)
                  and sid[:4] != "2021"]
    sids = sorted(pick_rng.sample(candidates, 2))
    small = [dict(r) for sid in sids for r in by_sid[sid]] + demo_cur
    # the row with credit 3 that will be broken goes to data row 6 (file line 7)
    j = next(i for i, r in enumerate(small) if r["学分"] == "3" and r["学号"] != DEMO["学号"])
    bad_src = small.pop(j)
    small.insert(5, bad_src)
    bad = [dict(r) for r in small]
    bad[5]["学分"] = "abc"
    fixed = [dict(r) for r in small]
    ml = next(r for r in fixed if r["学号"] == DEMO["学号"] and r["课程代码"] == "CS4001")
    old_score = ml["成绩"]
    ml["成绩"] = "91"
    write_csv(p("bad_grades_gbk.csv"), GRADES_HEADER, bad, "gbk")
    write_csv(p("fixed_grades_gbk.csv"), GRADES_HEADER, fixed, "gbk")

    # ---- checks: re-read everything ----
    roster_rows = read_csv(p("sample_roster.csv"), "utf-8")
    assert list(roster_rows[0].keys()) == ROSTER_HEADER
    assert {k: roster_rows[0][k] for k in ROSTER_HEADER} == DEMO, roster_rows[0]
    ids = [r["学号"] for r in roster_rows]
    assert len(ids) == len(set(ids)) and ids.count(DEMO["学号"]) == 1
    for r in roster_rows:
        assert re.fullmatch(r"20(21|22|23|24)0[1-8]\d\d", r["学号"]), r
        assert re.fullmatch(r"\d{5}[\dX]", r["身份证后六位"]), r
        assert r["姓名"] and r["班级"] and r["专业"] in MAJORS
    roster = {r["学号"]: r for r in roster_rows}
    x_share = sum(r["身份证后六位"].endswith("X") for r in roster_rows) / len(roster_rows)

    g_utf8 = read_csv(p("sample_grades.csv"), "utf-8")
    assert g_utf8 == [{h: r[h] for h in GRADES_HEADER} for r in grades]
    validate_grades(g_utf8, roster, "sample_grades.csv")
    g_gbk = read_csv(p("sample_grades_gbk.csv"), "gbk")
    assert g_gbk == [r for r in g_utf8 if r["学期"] == cur]
    validate_grades(g_gbk, roster, "sample_grades_gbk.csv")
    b = read_csv(p("bad_grades_gbk.csv"), "gbk")
    errs = validate_grades(b, roster, "bad_grades_gbk.csv", allow_bad_lines=(7,))
    assert errs == [(7, ["credit not a number"])], errs
    f = read_csv(p("fixed_grades_gbk.csv"), "gbk")
    validate_grades(f, roster, "fixed_grades_gbk.csv")
    sample_set = {tuple(r[h] for h in GRADES_HEADER) for r in g_gbk}
    diff_rows = [r for r in f if tuple(r[h] for h in GRADES_HEADER) not in sample_set]
    assert len(diff_rows) == 1 and diff_rows[0]["学号"] == DEMO["学号"], diff_rows
    assert [i for i, (x, y) in enumerate(zip(b, f)) if x != y] == [5, f.index(diff_rows[0])]
    for gfile in ("sample_grades_gbk.csv", "bad_grades_gbk.csv", "fixed_grades_gbk.csv"):
        raw = open(p(gfile), "rb").read()
        try:
            raw.decode("utf-8")
            utf8_valid = True
        except UnicodeDecodeError:
            utf8_valid = False
        assert not utf8_valid, f"{gfile} happens to be valid UTF-8"

    # ---- report ----
    print(f"sample_roster.csv      {len(roster_rows)} students "
          f"(X check digits: {x_share:.1%}; cohorts {COHORTS})")
    per_cohort = defaultdict(int)
    for r in roster_rows:
        per_cohort[r["学号"][:4]] += 1
    print("  per cohort:", dict(per_cohort))
    kinds = defaultdict(int)
    scores = defaultdict(int)
    nums = []
    for r in g_utf8:
        kinds[r["考试性质"] or "(empty)"] += 1
        s = r["成绩"]
        if s in VALID_SCORES:
            scores[s] += 1
        else:
            nums.append(float(s))
    terms = sorted({r["学期"] for r in g_utf8}, key=term_key)
    print(f"sample_grades.csv      {len(g_utf8)} rows, {len(terms)} terms {terms[0]} .. {terms[-1]}, "
          f"{len({r['课程代码'] for r in g_utf8})} courses")
    print("  kinds:", dict(kinds))
    print("  non-numeric scores:", dict(scores))
    mean = sum(nums) / len(nums)
    sd = (sum((x - mean) ** 2 for x in nums) / len(nums)) ** 0.5
    print(f"  numeric: n={len(nums)} mean={mean:.1f} sd={sd:.1f} <60: {sum(x < 60 for x in nums)} "
          f"with decimals: {sum(x != int(x) for x in nums)}")
    print(f"sample_grades_gbk.csv  {len(g_gbk)} rows (term {cur}, GBK)")
    print(f"bad_grades_gbk.csv     {len(b)} rows (GBK); line 7 = {b[5]}")
    print(f"fixed_grades_gbk.csv   {len(f)} rows (GBK); line 7 credit -> {f[5]['学分']}; "
          f"changed vs sample: {DEMO['学号']} {cur} CS4001 {CATALOGUE['CS4001'][0]} "
          f"{old_score} -> {ml['成绩']} (line {f.index(diff_rows[0]) + 2})")

    demo_rows = [r for r in g_utf8 if r["学号"] == DEMO["学号"]]
    print(f"\nDemo student {DEMO['学号']} {DEMO['姓名']}: {len(demo_rows)} rows")
    for r in demo_rows:
        print("  " + ",".join(r[h] for h in GRADES_HEADER))
    for t in sorted({r["学期"] for r in demo_rows}, key=term_key):
        g = gpa([r for r in demo_rows if r["学期"] == t])
        print(f"  term {t}: GPA {fmt_gpa(g)}  (= {g} exactly)")
    g = gpa(demo_rows)
    print(f"  overall GPA {fmt_gpa(g)} (= {g}), credits earned {fmt_num(credits_earned(demo_rows))}")
    after = [dict(r) for r in demo_rows]
    for r in after:
        if r["学期"] == cur and r["课程代码"] == "CS4001":
            r["成绩"] = ml["成绩"]
    print(f"  after fixed_grades_gbk.csv import: term {cur} GPA "
          f"{fmt_gpa(gpa([r for r in after if r['学期'] == cur]))}, overall {fmt_gpa(gpa(after))}")


if __name__ == "__main__":
    main()
